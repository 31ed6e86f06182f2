# runtime/transport/loom.capnp: the one wire format between loom processes (see docs/wire.md).
# Every ZeroMQ message is one `Frame` (the header part) followed by zero or more payload parts that
# large bytes and tensor data refer to by index (`Payload.frame`), so they travel without extra copies.
@0xc6230db16eaaba52;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("loom::transport::schema");

# The first part of every message.
struct Frame {
  version @0 :UInt16;  # wireVersion; a receiver refuses any other
  union {
    data @1 :Envelope;
    control @2 :Control;
  }
}

const wireVersion :UInt16 = 5;  # 2: loom 0.2 (plain int/float lists, link windows, epochs, lineage); 3: tag runs;
                                # 4: snapshot barriers and parts, decisions (cluster runs with --state);
                                # 5: a movable instance's credits name the data they follow (Credit.after)

# ---- values ----

enum DType { f32 @0; f64 @1; f16 @2; bf16 @3; i8 @4; i32 @5; i64 @6; u8 @7; }

# Bytes that are either inside the header or in a payload part of the same ZeroMQ message.
struct Payload {
  union {
    inline @0 :Data;
    frame @1 :UInt32;  # 1 = the first part after the header; each part is used once
  }
}

struct Tensor {
  dtype @0 :DType;
  shape @1 :List(Int64);  # every dimension >= 0; product * dtype size == data size
  data @2 :Payload;
}

struct Entry {
  key @0 :Text;
  value @1 :Value;
}

struct Value {
  union {
    null @0 :Void;
    bool @1 :Bool;
    int @2 :Int64;
    float @3 :Float64;
    string @4 :Text;
    bytes @5 :Payload;
    list @6 :List(Value);
    map @7 :List(Entry);  # insertion order kept
    tensor @8 :Tensor;
  }
}

# ---- data: one in-process message between two node instances ----

struct Envelope {
  run @0 :UInt64;
  from @1 :UInt32;  # global instance index of the sender
  to @2 :UInt32;    # global instance index of the receiver
  seq @3 :UInt64;   # per (run, from, to) stream, from 0, no gaps
  union {
    batch @4 :Batch;
    credit @5 :Credit;
    eos @6 :Eos;
    call @7 :Call;
    reply @8 :Reply;
    cancelCall @9 :CancelCall;
    barrier @11 :Barrier;
  }
  # How many times `from` has moved to another host (docs/cluster.md, "Losing a host"): a receiver drops
  # what an instance sends from before its latest move (a lost host that comes back).
  epoch @10 :UInt32;
  # Its sender waits for this envelope's acknowledgement (a movable instance whose credits are fenced behind
  # it at the sender): the receiver acks it at once, not at its next tick (docs/wire.md).
  ackNow @12 :Bool;
}

# `first`: the index of the first value on its link (set when the consumer may move; all ones: unset).
# `tags`: one per value when the producer may move: where the value came from (docs/cluster.md).
# `tagRuns`: the same tags as runs, when that is shorter (a run {link, nth, index, count} stands for the
# `count` tags {link, nth, index + i}); a batch carries tags or tagRuns, not both.
# A batch whose values are all ints travels as `ints`, one whose values are all floats as `floats` (8 bytes
# a value instead of a Value struct each); exactly one of values, ints and floats is non-empty.
struct Batch {
  link @0 :UInt32;
  values @1 :List(Value);
  first @2 :UInt64 = 0xffffffffffffffff;
  tags @3 :List(Lineage);
  ints @4 :List(Int64);
  floats @5 :List(Float64);
  tagRuns @6 :List(LineageRun);
}
struct Lineage { link @0 :UInt32; nth @1 :UInt32; index @2 :UInt64; }
struct LineageRun { link @0 :UInt32; nth @1 :UInt32; index @2 :UInt64; count @3 :UInt32; }
# `ack`: an acknowledgement riding on the credit (0: none): every envelope of the reverse stream (the one
# from this envelope's `to` to its `from`) with a seq below `ack` has arrived. See docs/wire.md.
# `after` (a movable instance's credit, docs/wire.md "Fenced credits"): data streams of the same sender to
# instances on the receiver's host; the receiver delivers the credit only once each stream {run, from, to}
# has arrived below `next`, so the credit never passes the outputs it stands for.
struct Credit { link @0 :UInt32; credits @1 :UInt32; ack @2 :UInt64; after @3 :List(Follows); }
struct Follows { to @0 :UInt32; next @1 :UInt64; }
struct Eos { link @0 :UInt32; }
struct Call {
  id @0 :UInt64;
  request @1 :Value;
  traceParent @2 :UInt64;  # a traced run: the caller's call span (the tool's span is its child); 0: none
}
struct Reply { id @0 :UInt64; ok @1 :Bool; value @2 :Value; error @3 :Text; }
# The caller gave up on call `id` (timeout, restart, stop): a tool that has not started it never runs it.
struct CancelCall { id @0 :UInt64; }
# A snapshot's barrier (docs/durability.md): in order with the stream's values, on the consumer's in-link.
struct Barrier { link @0 :UInt32; epoch @1 :UInt64; }

# ---- control: driver <-> worker ----

struct Host {
  name @0 :Text;
  dataAddress @1 :Text;  # tcp://HOST:PORT its endpoint binds
  publicKey @2 :Text;    # its CurveZMQ public key (z85); empty without curve
}

struct Plan {
  hosts @0 :List(Host);
  instanceHost @1 :List(UInt32);  # instance index -> index into hosts
  instanceDevice @2 :List(Int32);  # instance index -> GPU on its host, -1 for the CPU (empty: not planned)
}

struct Counters {
  in @0 :UInt64;
  out @1 :UInt64;
  busyNs @2 :UInt64;
  queueHwm @3 :UInt64;
  restarts @4 :UInt64;
  dropped @5 :UInt64;
}

struct Control {
  run @0 :UInt64;  # 0 where no run is meant (hello before a run, heartbeat)
  union {
    hello @1 :Hello;
    deploy @2 :Deploy;
    start @3 :Void;
    cancel @4 :Cancel;
    done @5 :Done;
    release @6 :Void;
    heartbeat @7 :Heartbeat;
    runEnded @8 :RunEnded;
    refused @9 :Refused;
    ack @10 :Ack;
    progress @11 :Progress;  # worker -> driver, every progress tick of its part (the live view, --ui)
    spans @12 :Text;  # a worker's spans of a traced run, sent after its part ended (JSON: runtime/observe/trace.hpp)
    adopt @13 :Adopt;  # driver -> every surviving worker: an instance of a lost host moves; echoed once done
    resume @14 :UInt32;  # driver -> workers, after every echo: resend to the moved instance
    snapshot @15 :UInt64;  # driver -> workers: take snapshot epoch n (docs/durability.md, "Cluster runs")
    snapshotPart @16 :SnapshotPart;  # worker -> driver: one instance's part of epoch n
    decide @17 :Decide;  # driver -> the worker of `instance`: a person decided about its pending decision
    asked @18 :Void;     # worker -> driver: an instance asked for a decision (a snapshot soon shows it)
  }
}

struct Hello { worker @0 :Text; }
struct Adopt { instance @0 :UInt32; host @1 :UInt32; epoch @2 :UInt32; }
struct Deploy {
  graphYaml @0 :Text;
  plan @1 :Plan;
  expandedGraph @2 :Text;  # the driver's expansion: one line per instance (links, capacities, tools)
  kinds @3 :Text;          # the driver's kind registry: one line per kind (ports, params, defaults)
  trace @4 :Text;          # a traced run: the driver's run span as a W3C traceparent; empty: not traced
  linkWindow @5 :UInt32;   # a link between two hosts gets at least this capacity (0: its edge's own)
  # A resumed run: the snapshot's epoch, and the parts of this worker's instances (a list of SnapshotPart
  # values, runtime/local/part_value.hpp); an instance without one starts fresh. Empty: a new run.
  restoreEpoch @6 :UInt64;
  restore @7 :List(SnapshotPart);
}
struct SnapshotPart { epoch @0 :UInt64; instance @1 :UInt32; part @2 :Value; }
# A decision for pending decision `id` of `instance` (runtime/node.hpp: decision): `verdict` is approve,
# reject or edit (a decoder refuses anything else); `edited` the value that goes on for an edit.
struct Decide {
  instance @0 :UInt32;
  id @1 :UInt64;
  verdict @2 :Text;
  edited @3 :Value;
  reason @4 :Text;
  by @5 :Text;
}
struct Cancel { reason @0 :Text; }
struct Done {
  instance @0 :UInt32;
  failed @1 :Bool;
  error @2 :Text;
  counters @3 :Counters;
  cancelled @4 :Bool;  # ended by a cancel or an abandoned run, not by finishing: never a success
}
struct Heartbeat {
  seq @0 :UInt64;
  timeNs @1 :Int64;
  # Metrics: "?" from a driver that serves them (`--metrics`) asks for the worker's; the worker's echo
  # carries its samples in the Prometheus text format (docs/metrics.md). Empty otherwise.
  samples @2 :Text;
  echoUnixNs @3 :Int64;  # set by a worker echoing a heartbeat: its wall clock then (the driver's trace clock offsets)
}
# A worker's counts so far, per local instance, and its producers' edges: sent every progress tick.
struct Progress { instances @0 :List(InstanceProgress); edges @1 :List(EdgeProgress); }
struct InstanceProgress { instance @0 :UInt32; counters @1 :Counters; queued @2 :UInt64; }
struct EdgeProgress {
  from @0 :Text;      # the producer instance, "node" or "node[i]"
  fromNode @1 :Text;
  to @2 :Text;        # the consumer node
  label @3 :Text;     # "a.out -> b.in"
  blockedNs @4 :UInt64;
  blocked @5 :Bool;   # its producer waits for credit on it now
}
struct RunEnded { ok @0 :Bool; error @1 :Text; }
struct Refused { reason @0 :Text; }
# Between endpoints, never shown to the application: every envelope of these streams with a seq below
# `next` has arrived; the sender may forget them (it keeps the rest to resend after a reconnect).
struct Ack { streams @0 :List(StreamAck); }
struct StreamAck { run @0 :UInt64; from @1 :UInt32; to @2 :UInt32; next @3 :UInt64; }
