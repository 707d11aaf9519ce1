#!/usr/bin/env bash
# Prints, for every test that failed in a `go test -v` log, what it wrote
# (each message's first lines), gathered at the end: with parallel tests the
# messages are streamed among hours of other output, and the summary's
# nested "--- FAIL" lines carry only names.
#   hack/test-failures.sh .e2e.log
set -euo pipefail
log=${1:?usage: $0 go-test-v.log}

awk '
# A header says which test the lines after it belong to.
/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; cont = 0; next }
# A result line ends its test'"'"'s output; the summary that follows is names.
/^ *--- (FAIL|PASS|SKIP): / {
	if ($2 == "FAIL:" && !($3 in failed)) { failed[$3] = 1; order[++nfailed] = $3 }
	cur = ""; next
}
cur == "" { next }
# A message: "    file_test.go:12: text"; its continuation lines are indented
# further. Only the first lines of each are kept (log tails are long).
/^    [^ ].*_test\.go:[0-9]+: / { out[cur] = out[cur] $0 "\n"; cont = 0; next }
/^        / && cont < 3 { out[cur] = out[cur] $0 "\n"; cont++ }
END {
	if (nfailed == 0) exit
	print ""
	print "=== What the failed tests wrote (hack/test-failures.sh " FILENAME "), innermost first:"
	for (i = 1; i <= nfailed; i++) {
		name = order[i]; top = name; sub(/\/.*/, "", top)
		depth[name] = gsub(/\//, "/", name)
		if (!(top in seen)) { seen[top] = 1; tops[++ntops] = top }
		maxdepth = depth[name] > maxdepth ? depth[name] : maxdepth
	}
	for (g = 1; g <= ntops; g++)
		for (d = maxdepth; d >= 0; d--)
			for (i = 1; i <= nfailed; i++) {
				name = order[i]; top = name; sub(/\/.*/, "", top)
				if (top != tops[g] || depth[name] != d || out[name] == "") continue
				print "--- FAIL: " name
				printf "%s", out[name]
			}
}' "$log"
