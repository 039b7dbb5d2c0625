import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface ServerOptions {
  /** Extra command-line options. */
  args?: string[];
  /** A config file, passed first (Sentinel needs one it can rewrite). */
  config?: string;
  /** What the server logs once it accepts connections. */
  readyText?: string;
}

/**
 * A redis-server of the test's own on a free loopback port, with no persistence: it can be killed
 * and restarted without disturbing the shared server on 6379.
 */
export class PrivateRedis {
  readonly port: number;
  private readonly options: ServerOptions;
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), "celery-ts-redis-"));

  constructor(port: number, options: ServerOptions) {
    this.port = port;
    this.options = options;
  }

  /** Writes a config file into the server's directory and starts from it. */
  useConfig(text: string): void {
    const config = join(this.dir, "redis.conf");
    writeFileSync(config, text);
    this.options.config = config;
  }

  static async start(options: ServerOptions = {}): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), options);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get running(): boolean {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts it (again) on the same port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.running) throw new Error("the private redis-server is running already");
    const { args = [], config, readyText = "Ready to accept connections" } = this.options;
    const child = spawn(
      "redis-server",
      [
        ...(config === undefined ? [] : [config]),
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        this.dir,
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start:\n${output}`)),
        10_000,
      );
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(readyText)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${output}`));
      });
    });
  }

  /** SIGKILL: what a crash or a pulled cable looks like to clients. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Sentinel of the test's own, watching `master` under the name `name`. */
export async function startSentinel(master: PrivateRedis, name: string): Promise<PrivateRedis> {
  const sentinel = new PrivateRedis(await freePort(), {
    args: ["--sentinel"],
    readyText: "+monitor master",
  });
  // Sentinel rewrites its config file: one of its own, in its own directory.
  sentinel.useConfig(`sentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`);
  await sentinel.restart();
  return sentinel;
}
