/**
 * A real Kafka broker for the Kafka tests: Apache Kafka 3.9.1 from Maven Central (scripts/build-kafka.sh, run by
 * the test command), started in KRaft mode (one process, broker and controller) on loopback ports with its own
 * data directory in a temp dir, and removed again by stop().
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./go.ts";
import { freePort, portAccepts } from "./ports.ts";
import { Proc } from "./processes.ts";

export interface KafkaBroker {
  /** host:port of its PLAINTEXT listener */
  address: string;
  /** the broker's process: a test stops it (SIGSTOP) to leave a request unanswered */
  pid: number;
  stop(): Promise<void>;
}

const OUT = join(ROOT, "build/kafka");

function jars(): { java: string; classpath: string } {
  if (!existsSync(join(OUT, "java"))) {
    const r = Bun.spawnSync(["bash", join(ROOT, "scripts/build-kafka.sh")], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("scripts/build-kafka.sh failed: no Kafka broker for the tests (see above)");
  }
  return { java: readFileSync(join(OUT, "java"), "utf8").trim(), classpath: `${join(OUT, "libs")}/*` };
}

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding (what `kafka-storage random-uuid` prints). Never
 * one that starts with '-', which StorageTool's argument parser reads as an option (as Kafka's own Uuid.randomUuid
 * avoids): one id in 64 did, and the broker's start failed in CI.
 */
function clusterId(): string {
  for (;;) {
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

export async function startKafka(): Promise<KafkaBroker> {
  const { java, classpath } = jars();
  const dir = mkdtempSync(join(tmpdir(), "gotel-kafka-"));
  writeFileSync(join(dir, "log4j.properties"), [
    "log4j.rootLogger=WARN, stderr",
    "log4j.appender.stderr=org.apache.log4j.ConsoleAppender",
    "log4j.appender.stderr.Target=System.err",
    "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout",
    "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n",
    "log4j.logger.kafka.server.KafkaRaftServer=INFO",
  ].join("\n"));
  const jvm = [java, "-Xmx512m", "-Xms128m", `-Dlog4j.configuration=file:${join(dir, "log4j.properties")}`, "-cp", classpath];
  let lastError = "";
  // a free port can be taken by another process before the broker binds it: then it is tried again
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let controller = await freePort();
    while (controller === port) controller = await freePort();
    const config = join(dir, `server-${attempt}.properties`);
    const data = join(dir, `data-${attempt}`);
    writeFileSync(config, [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      "controller.listener.names=CONTROLLER",
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
      "inter.broker.listener.name=PLAINTEXT",
      `log.dirs=${data}`,
      "num.partitions=1",
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=1",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
      "auto.create.topics.enable=true",
    ].join("\n"));
    const id = clusterId();
    const format = Bun.spawnSync([...jvm, "kafka.tools.StorageTool", "format", "-t", id, "-c", config], { stdout: "pipe", stderr: "pipe" });
    if (format.exitCode !== 0) throw new Error(`kafka-storage format (cluster id ${id}) failed: ${format.stdout}${format.stderr}`);
    const broker = new Proc([...jvm, "kafka.Kafka", config]);
    try {
      await broker.waitForLine(/Kafka Server started/, 60_000);
      if (await portAccepts(port)) {
        return {
          address: `127.0.0.1:${port}`,
          pid: broker.proc.pid,
          async stop() {
            await broker.stop();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
    } catch (e) {
      lastError = String(e);
    }
    await broker.stop("SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`the Kafka broker did not start: ${lastError}`);
}
