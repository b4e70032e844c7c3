/**
 * gotel on kernels older than this machine's: Debian's cloud kernels 6.1 (Debian 12's own: no uprobe.multi, so
 * classic links) and 5.10 (the oldest LTS gotel supports), and 6.1 for arm64 with gotel's arm64 build, booted in qemu (scripts/build-kernels.sh) with the
 * compiled gotel and real Go services in an initramfs. Each VM runs `gotel doctor` (every eBPF program through
 * that kernel's verifier) and `gotel trace` over service A (Go 1.27) calling service B (Go 1.19) on loopback, and
 * over test/fixtures/sql-fake running every database/sql path gotel probes, and over test/fixtures/grpc-service
 * (grpc v1.85) making gRPC calls to itself, whose server spans continue the traceparent gotel wrote into them,
 * and over two more A (Go 1.19 and 1.27) calling a B over HTTP/2 (TLS) with net/http's own HTTP/2 client, and
 * over test/fixtures/otel-api (otel v1.47 and, the global tracer before its agent hook, v1.32), whose handler makes
 * spans through the OpenTelemetry API: there gotel writes its IDs into the application's spans, which the program
 * prints.
 * These kernels boot without lockdown, so unlike this machine they let gotel write `traceparent` into A's
 * outgoing requests: the one place bpf_probe_write_user is checked on the wire.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { randomHex } from "../support/chain.ts";
import { buildGoFixture, ROOT } from "../support/go.ts";
import { SQL_FAKE_SPANS } from "../support/sql-fake.ts";
import { isArm64, kernelAvailable, runInVm, withArm64Libraries, withLibraries } from "../support/vm.ts";
import { GOTEL } from "../support/cli.ts";

interface JsonSpan {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: string; startTimeUnixNano: string;
  attributes: Record<string, unknown>; resource: Record<string, unknown>; status: { code: string };
}

const TRACE_ID = randomHex(16);
const PARENT = randomHex(8);

/** B, then A calling B, then `gotel trace` on both; two requests to A (the second with a traceparent). */
const SCRIPT = `
/gotel doctor > /tmp/doctor.txt 2>&1; echo "@@doctor-rc $?"; sed 's/^/@@doctor /' /tmp/doctor.txt
GOTEL_UPROBE_ATTACH=multi /gotel run --exe /bin/busybox > /tmp/multi.out 2>&1; echo "@@multi-rc $?"; sed 's/^/@@multi /' /tmp/multi.out
/b backend 127.0.0.1:8081 > /tmp/b.log 2>&1 &
B=$!
/a frontend 127.0.0.1:8080 http://127.0.0.1:8081 > /tmp/a.log 2>&1 &
A=$!
/sql 127.0.0.1:8082 > /tmp/sql.log 2>&1 &
S=$!
/grpc > /tmp/grpc.log 2>&1 &
G=$!
/a backend-h2 127.0.0.1:8083 > /tmp/b2.log 2>&1 &
B2=$!
/b frontend 127.0.0.1:8084 https://127.0.0.1:8083 > /tmp/a19.log 2>&1 &
A19=$!
/a frontend 127.0.0.1:8085 https://127.0.0.1:8083 > /tmp/a27.log 2>&1 &
A27=$!
echo "@@h2pids $B2 $A19 $A27"
/otel global 127.0.0.1:8086 > /tmp/otel.log 2>&1 &
O=$!
/otel132 global 127.0.0.1:8089 > /tmp/otel132.log 2>&1 &
O2=$!
sleep 1
i=0; while [ $i -lt 100 ] && ! grep -q '^listening ' /tmp/grpc.log; do sleep 0.2; i=$((i+1)); done
GRPC_HTTP=$(sed -n 's/^listening //p' /tmp/grpc.log)
OTEL_GO_AUTO_INCLUDE_DB_STATEMENT=true OTEL_GO_AUTO_PARSE_DB_STATEMENT=true \
  /gotel trace --pid $A --pid $B --pid $S --pid $G --pid $B2 --pid $A19 --pid $A27 --pid $O --pid $O2 --format jsonl > /tmp/spans.jsonl 2> /tmp/trace.err &
T=$!
i=0; while [ $i -lt 600 ] && ! grep -q 'gotel is running' /tmp/trace.err; do sleep 0.2; i=$((i+1)); done
echo "@@running-wait $i"; grep -q 'gotel is running' /tmp/trace.err || sed 's/^/@@not-running /' /tmp/trace.err
echo "@@answer $(wget -q -O - 'http://127.0.0.1:8080/inline?id=vm-1')"
echo "@@answer $(wget -q -O - --header 'traceparent: 00-${TRACE_ID}-${PARENT}-01' 'http://127.0.0.1:8080/inline?id=vm-2')"
for port in 8084 8085; do for n in 1 2; do echo "@@h2answer $(wget -q -O - "http://127.0.0.1:$port/inline?id=h2-$port-$n")"; done; done
echo "@@sql $(wget -q -O - 'http://127.0.0.1:8082/run')"
echo "@@otel $(wget -q -O - 'http://127.0.0.1:8086/work')"
echo "@@otel132 $(wget -q -O - 'http://127.0.0.1:8089/work')"
echo "@@grpc $(wget -q -O - "http://$GRPC_HTTP/call?kind=empty")"
echo "@@grpc $(wget -q -O - "http://$GRPC_HTTP/call?kind=unary&code=5&msg=vm")"
echo "@@grpc $(wget -q -O - "http://$GRPC_HTTP/call?kind=bidi&n=3")"
sleep 2
kill -INT $T; wait $T; echo "@@trace-rc $?"
sed 's/^/@@span /' /tmp/spans.jsonl; sed 's/^/@@log /' /tmp/trace.err; sed 's/^/@@grpclog /' /tmp/grpc.log
/a frontend 127.0.0.1:8087 http://127.0.0.1:8081 > /tmp/a2.log 2>&1 &
A2=$!
sleep 0.5
GOTEL_WRITE_TRACEPARENT=false GOTEL_SAME_HOST_LINKING=false /gotel trace --pid $A2 --format jsonl > /tmp/sock.jsonl 2> /tmp/sock.err &
T2=$!
i=0; while [ $i -lt 300 ] && ! grep -q 'gotel is running' /tmp/sock.err; do sleep 0.2; i=$((i+1)); done
for n in 1 2 3; do echo "@@sockanswer $(wget -q -O - "http://127.0.0.1:8087/inline?id=sock-$n&repeat=3000")"; done
sleep 1
kill -INT $T2; wait $T2; echo "@@sock-rc $?"
sed 's/^/@@sockspan /' /tmp/sock.jsonl; sed 's/^/@@socklog /' /tmp/sock.err
/b frontend 127.0.0.1:8088 https://127.0.0.1:8083 > /tmp/a3.log 2>&1 &
A3=$!
sleep 0.5
GOTEL_WRITE_TRACEPARENT=false /gotel trace --pid $A3 --pid $B2 --format jsonl > /tmp/link.jsonl 2> /tmp/link.err &
T3=$!
i=0; while [ $i -lt 300 ] && ! grep -q 'gotel is running' /tmp/link.err; do sleep 0.2; i=$((i+1)); done
for n in 1 2 3; do echo "@@linkanswer $(wget -q -O - "http://127.0.0.1:8088/inline?id=link-$n")"; done
sleep 1
kill -INT $T3; wait $T3; echo "@@link-rc $?"
sed 's/^/@@linkspan /' /tmp/link.jsonl; sed 's/^/@@linklog /' /tmp/link.err
`;

/** what the script printed after "@@tag " (the console may put a terminal's escape codes in front) */
const tagged = (lines: string[], tag: string) =>
  lines.map((l) => l.indexOf(`@@${tag} `)).flatMap((at, i) => (at < 0 ? [] : [lines[i]!.slice(at + tag.length + 3)]));

/** gotel and the two services as the VM's architecture needs them */
function vmFiles(kernel: string) {
  const goarch = isArm64(kernel) ? "arm64" as const : undefined;
  return [
    ...(goarch ? withArm64Libraries(join(ROOT, "dist/gotel-linux-arm64"), "/gotel") : withLibraries(GOTEL, "/gotel")),
    { path: "/a", from: buildGoFixture("http-chain", { goVersion: "1.27.4", goarch }) },
    { path: "/b", from: buildGoFixture("http-chain", { goVersion: "1.19.13", goarch }) },
    { path: "/sql", from: buildGoFixture("sql-fake", { goVersion: "1.27.4", goarch }) },
    { path: "/grpc", from: buildGoFixture("grpc-service", { goVersion: "1.27.4", goarch }) },
    { path: "/otel", from: buildGoFixture("otel-api", { goVersion: "1.27.4", goarch }) },
    { path: "/otel132", from: buildGoFixture("otel-api", { goVersion: "1.22.12", goarch, modfile: "go.v132.mod", tags: ["otel_legacy"] }) },
  ];
}

// 6.1-arm64: the arm64 build (its libbpf, eBPF objects, Go register ABI and RET sites) on an arm64 kernel, emulated
describe.each(["6.1", "5.10", "6.1-arm64"])("Linux %s in a VM", (kernel) => {
  test("doctor passes; A -> B traced with parents, an incoming traceparent continued, traceparent written on the wire, or inserted into the socket's bytes; every database/sql path", async () => {
    const missing = kernelAvailable(kernel);
    if (missing) throw new Error(`cannot boot Linux ${kernel}: ${missing}`);
    const lines = await runInVm(kernel, vmFiles(kernel), SCRIPT, 540_000);
    const console_ = () => lines.filter((l) => l.includes("@@")).join("\n");
    expect(tagged(lines, "kernel")[0], console_()).toStartWith(`${kernel.replace("-arm64", "")}.`);
    expect(tagged(lines, "doctor-rc"), console_()).toEqual(["0"]);
    const doctor = tagged(lines, "doctor");
    expect(doctor.find((l) => l.includes("uprobe.multi"))).toMatch(/^\s+warn\s+uprobe\.multi\s+not supported: classic uprobes are used/);
    expect(doctor.find((l) => l.includes("context propagation"))).toMatch(/^\s+ok\s+context propagation\s+bpf_probe_write_user is allowed/);
    // socket insertion loads (before 6.10 its sock_ops program reads the connecting task's tgid), and is not used
    // where traceparent is written: the two never both write
    expect(doctor.find((l) => l.includes("socket insertion")), console_()).toMatch(/^\s+ok\s+socket insertion\s+available but not used: traceparent is written here/);
    // asking for uprobe.multi where the kernel has none: one line, before anything is attached
    expect(tagged(lines, "multi-rc")).toEqual(["1"]);
    expect(tagged(lines, "multi")).toEqual([
      "gotel: GOTEL_UPROBE_ATTACH=multi: this kernel has no uprobe.multi links (Linux 6.6+); use auto or classic; `gotel doctor` shows what the kernel has",
    ]);
    expect(tagged(lines, "trace-rc"), console_()).toEqual(["0"]);
    expect(tagged(lines, "log").filter((l) => l.includes("gotel is running"))[0], console_()).toMatch(/ attach=classic targets=9$/);

    const all = tagged(lines, "span").map((l) => JSON.parse(l) as JsonSpan);
    const pid = (s: JsonSpan) => Number(s.resource["process.pid"]);
    const sqlPid = all.find((s) => s.resource["process.executable.path"] === "/sql")?.resource["process.pid"];
    const grpcPid = all.find((s) => s.resource["process.executable.path"] === "/grpc")?.resource["process.pid"];
    const h2Pids = tagged(lines, "h2pids")[0]!.split(" ").map(Number);
    const otelPid = all.find((s) => s.resource["process.executable.path"] === "/otel")?.resource["process.pid"];
    const otel132Pid = all.find((s) => s.resource["process.executable.path"] === "/otel132")?.resource["process.pid"];
    const spans = all.filter((s) => ![sqlPid, grpcPid, otelPid, otel132Pid].includes(s.resource["process.pid"]) && !h2Pids.includes(pid(s)));
    const answers = tagged(lines, "answer").map((l) => JSON.parse(l) as { traceparent: string[] | null; bodyOk: boolean; id: string });
    expect(answers.map((a) => [a.id, a.bodyOk])).toEqual([["vm-1", true], ["vm-2", true]]);
    expect(spans, console_()).toHaveLength(6); // per request: A's server and client spans, B's server span

    for (const [i, answer] of answers.entries()) {
      const client = spans.find((s) => s.kind === "CLIENT" && s.attributes["url.full"] === `http://127.0.0.1:8081/work?id=${answer.id}`)!;
      expect(client, console_()).toBeDefined();
      const aServer = spans.find((s) => s.spanId === client.parentSpanId)!;
      expect(aServer.kind).toBe("SERVER");
      expect(aServer.name).toBe("GET");
      expect(aServer.attributes["url.path"]).toBe("/inline");
      expect(pid(aServer)).toBe(pid(client));
      expect(aServer.traceId).toBe(client.traceId);
      if (i === 1) {
        expect(aServer.traceId).toBe(TRACE_ID);
        expect(aServer.parentSpanId).toBe(PARENT);
      }
      // what B received on the wire, and B's span continuing it
      expect(answer.traceparent).toEqual([`00-${client.traceId}-${client.spanId}-01`]);
      const bServer = spans.find((s) => s.kind === "SERVER" && pid(s) !== pid(client) && s.parentSpanId === client.spanId)!;
      expect(bServer, console_()).toBeDefined();
      expect(bServer.traceId).toBe(client.traceId);
      expect(bServer.attributes["url.path"]).toBe("/work");
    }

    // HTTP/2: net/http's own client (bundled in Go 1.19, net/http/internal/http2 in 1.27) — every request, the
    // first on its connection too, carries the client span's traceparent in its HEADERS frame
    const [b2] = h2Pids;
    const h2Answers = tagged(lines, "h2answer").map((l) => JSON.parse(l) as { traceparent: string[] | null; bodyOk: boolean; id: string; proto: string });
    expect(h2Answers.map((a) => [a.id, a.proto, a.bodyOk]), console_()).toEqual(
      ["8084-1", "8084-2", "8085-1", "8085-2"].map((id) => [`h2-${id}`, "HTTP/2.0", true]),
    );
    for (const answer of h2Answers) {
      const client = all.find((s) => s.kind === "CLIENT" && s.attributes["url.full"] === `https://127.0.0.1:8083/work?id=${answer.id}`)!;
      expect(client, console_()).toBeDefined();
      expect(client.attributes["network.protocol.version"]).toBe("2");
      expect(answer.traceparent).toEqual([`00-${client.traceId}-${client.spanId}-01`]);
      const bServer = all.find((s) => s.kind === "SERVER" && pid(s) === b2 && s.parentSpanId === client.spanId)!;
      expect(bServer, console_()).toBeDefined();
      expect(bServer.traceId).toBe(client.traceId);
    }

    // every database/sql path gotel probes (query, exec, transactions, Conn, prepared statements, an error)
    expect(tagged(lines, "sql")).toEqual(["ok"]);
    const sql = all.filter((s) => s.resource["process.pid"] === sqlPid);
    const server = sql.find((s) => s.kind === "SERVER")!;
    const db = sql.filter((s) => s.kind === "CLIENT").sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    expect(sql, console_()).toHaveLength(1 + SQL_FAKE_SPANS.length);
    expect(db.map((s) => [s.name, s.attributes["db.query.text"]])).toEqual(SQL_FAKE_SPANS);
    expect(db.every((s) => s.parentSpanId === server.spanId && s.traceId === server.traceId)).toBe(true);
    expect(db.at(-1)!.status.code).toBe("ERROR");

    // gRPC: per call the HTTP front's span, its gRPC CLIENT child, and the gRPC SERVER span, which continues
    // the traceparent written into the call's HEADERS — except on the connection's first call (EmptyCall), when
    // the loopy writer's HPACK buffer has no room yet
    expect(tagged(lines, "grpc"), tagged(lines, "grpclog").join("\n")).toEqual(["0 ", "5 vm", "0 "]);
    const grpc = all.filter((s) => s.resource["process.pid"] === grpcPid);
    expect(grpc, console_()).toHaveLength(9);
    const empty = grpc.filter((s) => s.name === "grpc.testing.TestService/EmptyCall");
    expect(empty.find((s) => s.kind === "SERVER")?.parentSpanId, console_()).toBe("");
    for (const [method, code] of [["UnaryCall", "NOT_FOUND"], ["FullDuplexCall", "OK"]]) {
      const name = `grpc.testing.TestService/${method}`;
      const client = grpc.find((s) => s.kind === "CLIENT" && s.name === name)!;
      const server = grpc.find((s) => s.kind === "SERVER" && s.name === name)!;
      expect(client, console_()).toBeDefined();
      expect(server, console_()).toBeDefined();
      expect(grpc.find((s) => s.spanId === client.parentSpanId)?.attributes["url.path"]).toBe("/call");
      expect([client.attributes["rpc.status_code"], server.attributes["rpc.status_code"]]).toEqual([code, code]);
      expect(client.status.code).toBe(code === "OK" ? "UNSET" : "ERROR");
      expect(server.attributes["network.peer.address"]).toBe("127.0.0.1");
      expect([server.traceId, server.parentSpanId], console_()).toEqual([client.traceId, client.spanId]);
    }
    // socket insertion, forced by GOTEL_WRITE_TRACEPARENT=false on a new A: the header in the bytes, bodies intact
    expect(tagged(lines, "sock-rc"), tagged(lines, "socklog").join("\n")).toEqual(["0"]);
    expect(tagged(lines, "socklog").find((l) => l.includes("socket insertion is on")), tagged(lines, "socklog").join("\n")).toBeDefined();
    const sockSpans = tagged(lines, "sockspan").map((l) => JSON.parse(l) as JsonSpan);
    const sockAnswers = tagged(lines, "sockanswer").map((l) => JSON.parse(l) as { traceparent: string[] | null; bodyOk: boolean; id: string });
    expect(sockAnswers.map((a) => [a.id, a.bodyOk]), console_()).toEqual([["sock-1", true], ["sock-2", true], ["sock-3", true]]);
    for (const answer of sockAnswers) {
      const client = sockSpans.find((s) => s.kind === "CLIENT" && s.attributes["url.full"] === `http://127.0.0.1:8081/work?id=${answer.id}`)!;
      expect(client, tagged(lines, "socklog").join("\n")).toBeDefined();
      // gotel's log (its stop line counts insert_missed / insert_not_http1) says why a request went without one
      expect(answer.traceparent, tagged(lines, "socklog").join("\n")).toEqual([`00-${client.traceId}-${client.spanId}-01`]);
    }

    // same-host linking over HTTP/2, forced by GOTEL_WRITE_TRACEPARENT=false on a new A (Go 1.19's bundled client)
    // calling B2 (Go 1.27's internal server): nothing written, B2's spans continue A's through (connection, stream)
    const linkLog = tagged(lines, "linklog").join("\n");
    expect(tagged(lines, "link-rc"), linkLog).toEqual(["0"]);
    expect(linkLog).toContain("same-host linking is on");
    const linkSpans = tagged(lines, "linkspan").map((l) => JSON.parse(l) as JsonSpan);
    const linkAnswers = tagged(lines, "linkanswer").map((l) => JSON.parse(l) as { traceparent: string[] | null; bodyOk: boolean; id: string; proto: string });
    expect(linkAnswers.map((a) => [a.id, a.proto, a.bodyOk, a.traceparent]), linkLog).toEqual(
      ["link-1", "link-2", "link-3"].map((id) => [id, "HTTP/2.0", true, null]),
    );
    for (const answer of linkAnswers) {
      const client = linkSpans.find((s) => s.kind === "CLIENT" && s.attributes["url.full"] === `https://127.0.0.1:8083/work?id=${answer.id}`)!;
      expect(client, linkLog).toBeDefined();
      const bServer = linkSpans.find((s) => s.kind === "SERVER" && pid(s) === b2 && s.parentSpanId === client.spanId);
      expect(bServer?.traceId, linkLog).toBe(client.traceId);
    }

    // the OpenTelemetry API: the IDs the program sees for its own spans are the ones exported
    const otel = all.filter((s) => s.resource["process.pid"] === otelPid);
    const [work, child] = ["work", "child"].map((n) => otel.find((s) => s.name === n));
    expect(work, console_()).toBeDefined();
    expect(tagged(lines, "otel"), console_()).toEqual([`${work!.traceId} ${work!.spanId} ${child?.spanId}`]);
    expect(child?.parentSpanId).toBe(work!.spanId);
    expect(otel.find((s) => s.spanId === work!.parentSpanId)?.attributes["url.path"]).toBe("/work");
    // and the global tracer of otel before v1.33.0: gotel's IDs written into the boxes of its nonRecordingSpans
    const legacy = all.filter((s) => s.resource["process.pid"] === otel132Pid);
    const [work132, child132] = ["work", "child"].map((n) => legacy.find((s) => s.name === n));
    expect(work132, console_()).toBeDefined();
    expect(tagged(lines, "otel132"), console_()).toEqual([`${work132!.traceId} ${work132!.spanId} ${child132?.spanId}`]);
    expect(child132?.parentSpanId).toBe(work132!.spanId);
    expect(legacy.find((s) => s.spanId === work132!.parentSpanId)?.attributes["url.path"]).toBe("/work");
  }, 600_000);
});
