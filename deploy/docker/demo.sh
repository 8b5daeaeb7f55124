#!/usr/bin/env bash
# Drives the docker-compose demo (docs/demo.md). `demo.sh up` starts the
# deployment and waits for every node's health check, `demo.sh story` runs the
# scripted story, `demo.sh down` removes containers, networks and volumes,
# and `demo.sh short` does all three under one deadline, cleaning up whatever
# happens (for CI). Run from the repository root; `make demo` builds the image.
set -euo pipefail
cd "$(dirname "$0")"
SELF=$PWD/$(basename "$0")
GO=${GO:-go}
COMPOSE=(docker-compose -p concord-demo -f docker-compose.yml)
NODES=(a1 a2 a3 b1 b2 b3 c1 c2 c3)

down() {
	echo "== removing the demo deployment (containers, networks, volumes)"
	"${COMPOSE[@]}" down -v --remove-orphans -t 5
}

up() {
	local timeout=${DEMO_UP_TIMEOUT:-120}
	echo "== starting 3 regions x 3 nodes"
	"${COMPOSE[@]}" up -d
	echo "== waiting for the health checks (concord healthcheck -ready), at most ${timeout}s"
	local deadline=$((SECONDS + timeout)) unhealthy
	while :; do
		unhealthy=()
		for n in "${NODES[@]}"; do
			s=$(docker inspect -f '{{.State.Health.Status}}' "concord-$n" 2>/dev/null || echo missing)
			[ "$s" = healthy ] || unhealthy+=("$n:$s")
		done
		[ ${#unhealthy[@]} -eq 0 ] && break
		if [ $SECONDS -ge $deadline ]; then
			echo "not healthy after ${timeout}s: ${unhealthy[*]}" >&2
			return 1
		fi
		sleep 1
	done
	echo "   all 9 nodes healthy after $((SECONDS + timeout - deadline))s"
}

story() {
	(cd ../.. && "$GO" run ./deploy/docker/story "$@")
}

# bounded runs a command under a deadline. timeout(1) puts the command in
# its own process group, out of reach of the terminal's Ctrl-C, so INT and
# TERM are passed on to it here (timeout signals the whole group), and the
# script then exits, which runs the EXIT trap.
bounded() {
	local secs=$1 rc=0
	shift
	timeout "$secs" "$@" &
	child=$!
	trap 'kill -TERM $child 2>/dev/null; interrupted=1' INT TERM
	wait $child || rc=$?
	if [ -n "${interrupted:-}" ]; then
		wait $child 2>/dev/null || true
		echo "interrupted" >&2
		exit 130
	fi
	trap - INT TERM
	[ $rc -ne 124 ] || echo "timed out after ${secs}s: $*" >&2
	return $rc
}

case ${1:-} in
up) up ;;
story) shift; story "$@" ;;
down) down ;;
short)
	# Every step is bounded (timeout here, deadlines inside the story), and
	# the trap removes the deployment on success, failure or interrupt.
	trap down EXIT
	down >/dev/null 2>&1 || true
	DEMO_UP_TIMEOUT=90 bounded 150 "$SELF" up
	bounded 300 "$SELF" story -short
	;;
*) echo "usage: $0 up|story|down|short" >&2; exit 2 ;;
esac
