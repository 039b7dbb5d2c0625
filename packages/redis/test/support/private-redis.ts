import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
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

/**
 * A free loopback port, held (as the local end of a connection to a listener of our own, so that
 * a connection to it is still refused, as to a server that is down) until `release()`: nothing
 * else can bind it meanwhile. A port taken between the look-up and the hold is skipped.
 */
export async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const target = createServer((socket) => socket.on("error", () => undefined));
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  const { port: targetPort } = target.address() as { port: number };
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const socket = connect({ host: "127.0.0.1", port: targetPort, localPort: port });
    const held = await new Promise<boolean>((resolve, reject) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", (error: NodeJS.ErrnoException) =>
        error.code === "EADDRINUSE" && attempt < 10 ? resolve(false) : reject(error),
      );
    });
    if (!held) continue;
    socket.on("error", () => undefined);
    return {
      port,
      release: async () => {
        socket.destroy();
        await new Promise((resolve) => target.close(resolve));
      },
    };
  }
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
  /** Releases the port held until the first start (see {@link PrivateRedis.late}). */
  private release: (() => Promise<void>) | undefined;

  constructor(port: number, options: ServerOptions) {
    this.port = port;
    this.options = options;
  }

  /**
   * A server to start later (`restart()`) on a port held until then, so that nothing else takes
   * it meanwhile; connections to it are refused until it starts.
   */
  static async late(options: ServerOptions = {}): Promise<PrivateRedis> {
    const { port, release } = await holdPort();
    const server = new PrivateRedis(port, options);
    server.release = release;
    return server;
  }

  /** Writes a config file into the server's directory and starts from it. */
  useConfig(text: string): void {
    const config = join(this.dir, "redis.conf");
    writeFileSync(config, text);
    this.options.config = config;
  }

  /** Starts one on a free port (another, should that one be taken before it binds it). */
  static async start(options: ServerOptions = {}): Promise<PrivateRedis> {
    for (let attempt = 1; ; attempt++) {
      const server = new PrivateRedis(await freePort(), options);
      try {
        await server.restart();
        return server;
      } catch (error) {
        await server.stop();
        if (attempt >= 5 || !/Address already in use/.test(String(error))) throw error;
      }
    }
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
    await this.release?.();
    this.release = undefined;
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
    await this.release?.();
    this.release = undefined;
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
