# bench/hop_setup.sh: sourced by recover_bench.sh and recover_cpu.sh. Given $COUNT, makes $dir (removed on
# exit, with the processes in $pids) and writes there a two-host loopback cluster (hosts a and b on free
# ports $pa and $pb) and the hop numbers (a) -> pass (b, flow.forward) -> tally (a) as fail.yaml and
# replace.yaml (pass's `recover:` mode).
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port)
cat > "$dir/cluster.yaml" <<YAML
name: bench
hosts:
  - {name: a, address: tcp://127.0.0.1:$pa, cpus: 4}
  - {name: b, address: tcp://127.0.0.1:$pb, cpus: 4}
YAML
for mode in fail replace; do
  cat > "$dir/$mode.yaml" <<YAML
graph: hop
nodes:
  numbers: {kind: source.sequence, params: {count: $COUNT}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}, recover: $mode}
  tally: {kind: sink.count, params: {expect: $COUNT}, placement: {host: a}}
edges:
  - numbers -> pass -> tally
YAML
done
