package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
)

// quarantineDir is where blocks that cannot be opened are moved, under the
// TSDB's directory: kept for a person to inspect, out of the TSDB's way.
const quarantineDir = "corrupted"

// quarantineCorruptedBlocks moves every block of dir that cannot be opened
// to dir/corrupted. The TSDB refuses to open at all while one is there, and
// a crash loop would take kubectl top away with it; a lost block costs its
// two hours of history only. It returns the blocks moved.
func quarantineCorruptedBlocks(dir string, logger *slog.Logger) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := ulid.ParseStrict(e.Name()); err != nil {
			continue // not a block: wal, chunks_head, corrupted…
		}
		path := filepath.Join(dir, e.Name())
		b, err := tsdb.OpenBlock(logger, path, nil, nil)
		if err == nil {
			_ = b.Close()
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, quarantineDir), 0o755); err != nil {
			return moved, err
		}
		if rerr := os.Rename(path, filepath.Join(dir, quarantineDir, e.Name())); rerr != nil {
			return moved, fmt.Errorf("moving corrupted block %s aside: %w", e.Name(), rerr)
		}
		logger.Error("Moved a block that cannot be opened aside; its history is lost, the rest is served", "block", e.Name(), "to", filepath.Join(dir, quarantineDir), "err", err)
		moved = append(moved, e.Name())
	}
	return moved, nil
}
