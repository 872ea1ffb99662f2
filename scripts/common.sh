# Shared by the run_*.sh wrappers (sourced, not run). Finds membalancer and
# checks the PPID argument; the wrappers add a mode's options and exec it.

# The membalancer next to the scripts (a checkout's bin/, or an installed
# PREFIX/bin), else $MEMBALANCER, else the one on PATH.
script_dir=$(cd "$(dirname "$0")" && pwd)
if [ -n "${MEMBALANCER:-}" ]; then
	:
elif [ -x "$script_dir/../bin/membalancer" ]; then
	MEMBALANCER=$script_dir/../bin/membalancer
elif [ -x "$script_dir/../../../bin/membalancer" ]; then
	MEMBALANCER=$script_dir/../../../bin/membalancer
else
	MEMBALANCER=membalancer
fi

# usage LINE: prints it and exits 2.
usage() {
	echo "usage: $1" >&2
	exit 2
}

# need_ppid USAGE ARG: ARG must be the id of a running process (digits, no
# leading zero: "00" or "010" would reach membalancer as another number).
need_ppid() {
	case ${2:-} in
	'' ) usage "$1" ;;
	*[!0-9]* | 0* ) echo "$(basename "$0"): '$2' is not a process id" >&2; usage "$1" ;;
	esac
	if [ ! -d "/proc/$2" ]; then
		echo "$(basename "$0"): no process $2" >&2
		usage "$1"
	fi
}

# migrate_flag ARG: "--migrate" when ARG is the word migrate.
migrate_flag() {
	[ "${1:-}" = migrate ] && echo --migrate
}
