package peers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type file struct{ name, content string }

func TestBinary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []file // written before the call
		later   []file // written while it waits, in this order
		want    string
		wantErr string
	}{
		{name: "built", files: []file{{".lock", ""}, {"X_BIN", "/cache/x-v1\n"}}, want: "/cache/x-v1"},
		{name: "built while waiting", files: []file{{".lock", ""}}, later: []file{{"X_BIN", "/cache/x-v2\n"}}, want: "/cache/x-v2"},
		{name: "failed", files: []file{{".lock", ""}, {"X_BIN.failed", ""}, {"X_BIN.log", "go: downloading\nbuild error: no space\n"}}, wantErr: "no space"},
		{name: "failed while waiting", files: []file{{".lock", ""}}, later: []file{{"X_BIN.log", "boom\n"}, {"X_BIN.failed", ""}}, wantErr: "boom"},
		{name: "empty path", files: []file{{".lock", ""}, {"X_BIN", "\n"}}, wantErr: "printed no path"},
		{name: "never started", files: nil, wantErr: "never ran"},
		{name: "still building", files: []file{{".lock", ""}}, wantErr: "still building"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// As hack/build-peers.sh does: in order (a build's log is
			// written before <ENV>.failed is touched), and each file whole
			// when it appears (the path moved into place from a .tmp), for
			// the wait relies on both.
			write := func(files []file) {
				for _, f := range files {
					tmp := filepath.Join(dir, f.name+".tmp")
					if err := os.WriteFile(tmp, []byte(f.content), 0o644); err != nil {
						t.Error(err)
					}
					if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
						t.Error(err)
					}
				}
			}
			write(tc.files)
			done := make(chan struct{})
			if tc.later != nil {
				go func() {
					defer close(done)
					time.Sleep(30 * time.Millisecond)
					write(tc.later)
				}()
			} else {
				close(done)
			}
			// "still building" must wait out its timeout; the others end
			// on what the files say long before it.
			timeout := time.Minute
			if tc.name == "still building" {
				timeout = 50 * time.Millisecond
			}
			var told int
			got, err := wait(dir, "X_BIN", timeout, 5*time.Millisecond, func(string, ...any) { told++ })
			<-done
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if told > 1 {
				t.Fatalf("told of the wait %d times, want at most once", told)
			}
		})
	}
}

func TestBinaryPrefersTheEnvironment(t *testing.T) {
	t.Setenv("X_BIN", "/mine/x")
	t.Setenv(DirEnv, "")
	if got, err := Binary("X_BIN", time.Second, nil); err != nil || got != "/mine/x" {
		t.Fatalf("got %q, %v", got, err)
	}
	t.Setenv("X_BIN", "")
	if _, err := Binary("X_BIN", time.Second, nil); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("with nothing set: %v, want ErrNotConfigured", err)
	}
}
