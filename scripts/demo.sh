#!/usr/bin/env bash
# make demo: a publisher and two subscribers on a private bus for about
# 10 s. One subscriber verifies every sample and shows live statistics (on
# a terminal); the other shows the newest sample twice a second, like a
# display. At the end: the statistics, and a check that received + lost
# equals published and that nothing is left in /dev/shm or the bus.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export SENSORBUS_DIR="$work/bus"
go build -o "$work/" ./cmd/publisher ./cmd/subscriber ./cmd/busctl
bin="$work"

echo "== publisher: IMU samples at 100 kHz for 10 s (bus $SENSORBUS_DIR)"
"$bin/subscriber" --topic demo.imu --from oldest --verify --format none --stats --stats-json \
	--duration 12s --wait-for-publisher 5s >"$work/stream.json" &
stream=$!
"$bin/subscriber" --topic demo.imu --mode latest --interval 500ms --format text \
	--duration 11s --wait-for-publisher 5s | cut -c1-160 &
"$bin/publisher" --topic demo.imu --type imu --rate 100000 --duration 10s --stats-json >"$work/pub.json" &
pub=$!
sleep 2
echo "== busctl list"
"$bin/busctl" list
wait $pub
wait $stream || true
wait
echo "== publisher:  $(cat "$work/pub.json")"
echo "== subscriber: $(cat "$work/stream.json")"
published=$(sed 's/.*"published":\([0-9]*\).*/\1/' "$work/pub.json")
received=$(sed 's/.*"received":\([0-9]*\).*/\1/' "$work/stream.json")
lost=$(sed 's/.*"lost":\([0-9]*\).*/\1/' "$work/stream.json")
corrupt=$(sed 's/.*"corrupt":\([0-9]*\).*/\1/' "$work/stream.json")
echo "== received $received + lost $lost = $((received + lost)) of $published published; $corrupt corrupt"
left=$("$bin/busctl" list)
echo "== after the run: $left"
[ "$((received + lost))" -eq "$published" ] && [ "$corrupt" -eq 0 ] && [ "$left" = "no topics on the bus" ]
