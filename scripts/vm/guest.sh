#!/usr/bin/env bash
# Runs inside the VM, in root's login shell on the serial console (the host shares it over 9p):
# bring /root/lxclab to the host's commit, then the README's two commands, `./kit classroom` in the
# background until its registry answers and `./kit test ARGS`; logs and a summary go back to the host.
set -uo pipefail
share=/mnt/host out=/mnt/host/out
mkdir -p "$out"
date +%s >"$out/booted"  # the host's watchdog waits for this
up_at="$(cut -d' ' -f1 /proc/uptime)"
say() { printf 'vm-guest: %s\n' "$*"; }
now() { date +%s; }

source "$share/checkout.sh"

# The classroom's registry answers once /v2/ asks for a token (Debian's own registry service asks for none).
registry_answers() {
  curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:5000/v2/ 2>/dev/null | grep -q 401
}

start_classroom() {
  ./kit classroom >"$out/classroom.log" 2>&1 &
  classroom_pid=$!
  local deadline=$(($(now) + 900))
  until registry_answers && grep -q 'opening JupyterLab' "$out/classroom.log"; do
    if ! kill -0 "$classroom_pid" 2>/dev/null; then
      say "./kit classroom stopped: $(tail -3 "$out/classroom.log" | tr '\n' ' ')"
      return 1
    fi
    (($(now) < deadline)) || { say "./kit classroom not ready after 15 min"; return 1; }
    sleep 2
  done
}

run_tests() {
  export LXCLAB_TEST_SLOWDOWN=6  # TCG: browser tests and service starts wait six times longer before they fail
  export LXCLAB_TEST_TRACEBACKS_AT_ONCE=1  # a run lasts hours: each failure's traceback when it happens, not at the end
  export PYTEST_TIMEOUT=1800  # and a test may take 30 min, not pyproject's 10 (JupyterLab runs a whole lesson)
  export PYTEST_ADDOPTS="-v ${PYTEST_ADDOPTS:-}"  # one line per test (and per lesson cell): the log shows where it is
  local args=()
  [[ -s "$share/args" ]] && mapfile -d '' args <"$share/args"
  # screenshots go straight to the host, so that a run stopped before its end still brings them back
  mkdir -p "$out/test-artifacts" && rm -rf test-artifacts && ln -s "$out/test-artifacts" test-artifacts
  ./kit test "${args[@]}" 2>&1 | tee "$out/test.log"
  return "${PIPESTATUS[0]}"
}

say "booted in ${up_at}s; $(uname -r); cgroup $(stat -fc %T /sys/fs/cgroup); AppArmor $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo absent); in $(cut -d: -f3 /proc/self/cgroup | tail -1)"
t=$(now); checkout "$share" || say "could not check out $(cat "$share/commit")"; t_checkout=$(($(now) - t))
t=$(now); start_classroom; classroom_ok=$?; t_classroom=$(($(now) - t))
say "classroom: $([[ $classroom_ok == 0 ]] && echo up || echo FAILED) in ${t_classroom}s; running ./kit test $(tr '\0' ' ' 2>/dev/null <"$share/args")"
t=$(now); run_tests; status=$?; t_test=$(($(now) - t))
kill "$classroom_pid" 2>/dev/null; wait "$classroom_pid" 2>/dev/null
results="$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran|deselected).* in [0-9.]+s' "$out/test.log" | tr -d '=' | sed 's/^ *//;s/ *$//' | paste -sd ';')"
{
  echo "release=$(. /etc/os-release; echo "$VERSION_CODENAME")"
  echo "kernel=$(uname -r)"
  echo "commit=$(cat "$share/commit")"
  echo "results=${results:-no pytest summary line}"
  echo "status=$status"
  echo "classroom=$([[ $classroom_ok == 0 ]] && echo up || echo failed)"
  echo "boot_s=${up_at%.*} checkout_s=$t_checkout classroom_s=$t_classroom test_s=$t_test"
} >"$out/summary"
echo "$status" >"$out/status"
sync
