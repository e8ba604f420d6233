#!/usr/bin/env bash
# benches/soak.sh [MINUTES] — a long run of benches/soak.yaml (default 30 minutes) that
# shows whether squall itself grows: every 10 s it samples the run's resident memory,
# open descriptors, threads and tokio's alive tasks (from the run's progress.json), then
# prints start / middle / end / max and the slope per 10 minutes of each, and a verdict.
#
#   benches/soak.sh            # 30 minutes
#   benches/soak.sh 3          # a quick check
#   SQUALL=path/to/squall benches/soak.sh 60
#
# The warm-up (the first minute, or the first tenth of a longer run: clients ramping,
# buffers and histograms reaching their working size, the first fault cycles) and the
# drain after the end are left out of the figures. The slope is the change from the
# median of the first half of the samples to the median of the second, per 10 minutes
# (robust to one sample catching a reconnect wave). "flat" means it is at most 2% of the
# metric's starting value per 10 minutes, and at least 2 MiB of RSS, 10 descriptors, 1
# thread, 10 tasks (the noise of one fault cycle); "growing" names the metrics that were
# not. Exit 0 flat, 1 growing, 3 the run failed.
#
# Samples and the run's report stay in the directory printed at the end (or $SOAK_DIR).

set -euo pipefail

minutes=${1:-30}
case $minutes in
'' | *[!0-9]* | 0)
	echo "usage: benches/soak.sh [MINUTES] (a whole number > 0)" >&2
	exit 2
	;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SQUALL:-$root/target/release/squall}
if [ -z "${SQUALL:-}" ]; then
	cargo build --release --quiet --bin squall --manifest-path "$root/Cargo.toml"
fi
dir=${SOAK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/squall-soak.XXXXXX")}
mkdir -p "$dir"
samples=$dir/samples.tsv
# The first minute, or the first tenth of a longer run: ramp-up, the first fault cycles,
# buffers and the allocator reaching their working size.
warmup=$((minutes * 6 > 60 ? minutes * 6 : 60))
every=10

"$bin" run "$root/benches/soak.yaml" --duration "${minutes}m" --into "$dir/run" --quiet \
	>"$dir/stdout.log" 2>"$dir/stderr.log" &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' INT TERM

printf 't_s\trss_kib\tfds\tthreads\ttasks\tconnected\n' >"$samples"
echo "soak: ${minutes} min of benches/soak.yaml (pid $pid), a sample every ${every}s in $samples" >&2
# Bounded: the run's minutes, plus a generous drain, in samples.
for ((i = 0; i < (minutes * 60 + 120) / every; i++)); do
	sleep "$every"
	kill -0 "$pid" 2>/dev/null || break
	status=/proc/$pid/status
	rss=$(awk '/^VmRSS:/ { print $2 }' "$status" 2>/dev/null) || break
	threads=$(awk '/^Threads:/ { print $2 }' "$status" 2>/dev/null) || break
	fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	progress=$(cat "$dir/run/progress.json" 2>/dev/null || echo '{}')
	field() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p" <<<"$progress"; }
	elapsed=$(field elapsed_s)
	duration=$(field duration_s)
	# Only while clients run: the drain after the end empties everything on purpose.
	if [ -n "$elapsed" ] && [ "$elapsed" -lt "${duration:-0}" ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$elapsed" "$rss" "$fds" "$threads" \
			"$(field tasks)" "$(field connected)" >>"$samples"
	fi
done
set +e
wait "$pid"
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
	echo "soak: the run exited $rc (see $dir/stderr.log)" >&2
	exit 3
fi

awk -v warmup="$warmup" -v dir="$dir" '
# The median of a[1..k] (sorted in place: k is a few hundred at most).
function median(a, k,    i, j, x) {
	for (i = 2; i <= k; i++) {
		x = a[i]
		for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
		a[j + 1] = x
	}
	return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
NR == 1 { next }
$1 >= warmup {
	n++
	t[n] = $1
	for (c = 2; c <= 5; c++) v[c, n] = $c
}
END {
	if (n < 4) {
		printf "soak: only %d samples after the %ds warm-up: run longer\n", n, warmup > "/dev/stderr"
		exit 3
	}
	split("rss_kib fds threads tasks", names, " ")
	split("2048 10 1 10", floor, " ")
	h = int(n / 2)
	for (i = 1; i <= h; i++) { t1[i] = t[i]; t2[i] = t[n - h + i] }
	span = (median(t2, h) - median(t1, h)) / 600
	printf "%-8s %10s %10s %10s %10s %14s  %s\n", "metric", "start", "middle", "end", "max", "slope/10min", "verdict"
	growing = ""
	for (c = 2; c <= 5; c++) {
		max = v[c, 1]
		for (i = 1; i <= n; i++) if (v[c, i] > max) max = v[c, i]
		# Robust to a dip or a spike (a reconnect wave caught by one sample): the change
		# from the median of the first half to the median of the second, per 10 minutes.
		for (i = 1; i <= h; i++) { a[i] = v[c, i]; b[i] = v[c, n - h + i] }
		slope = (median(b, h) - median(a, h)) / span
		start = v[c, 1]
		tol = start * 0.02
		if (tol < floor[c - 1]) tol = floor[c - 1]
		verdict = slope <= tol ? "flat" : "growing"
		if (verdict == "growing") growing = growing " " names[c - 1]
		printf "%-8s %10d %10d %10d %10d %+14.1f  %s (tolerance %+.1f)\n", names[c - 1], start, v[c, int((n + 1) / 2)], v[c, n], max, slope, verdict, tol
	}
	printf "%d samples from %ds to %ds (after a %ds warm-up); samples and report in %s\n", n, t[1], t[n], warmup, dir
	if (growing == "") { print "verdict: flat"; exit 0 }
	print "verdict: growing:" growing
	exit 1
}' "$samples"
