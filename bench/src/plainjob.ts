// plainjob (a SQLite job queue for Node) as the SQLite peer, on Node's own node:sqlite: its
// better-sqlite3 connection shape, adapted. Run as `node plainjob.ts <file>` it is one worker
// process; imported, it fills a queue and counts what is done.
import { DatabaseSync } from "node:sqlite";
import {
  better,
  defineQueue,
  defineWorker,
  JobStatus,
  type Connection,
  type Queue,
} from "plainjob";

const silent = { error() {}, warn() {}, info() {}, debug() {} };

/** node:sqlite in the shape plainjob reads from better-sqlite3 (prepare, pragma, transaction). */
export function nodeConnection(filename: string): Connection {
  const db = new DatabaseSync(filename);
  const tx =
    <F extends (...args: never[]) => unknown>(fn: F, mode: string) =>
    (...args: Parameters<F>) => {
      db.exec(`BEGIN ${mode}`);
      try {
        const result = fn(...args);
        db.exec("COMMIT");
        return result;
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    };
  const shim = {
    name: filename,
    pragma: (statement: string) => db.exec(`PRAGMA ${statement}`),
    exec: (statement: string) => db.exec(statement),
    prepare: (statement: string) => db.prepare(statement),
    transaction: <F extends (...args: never[]) => unknown>(fn: F) =>
      Object.assign(tx(fn, "DEFERRED"), {
        deferred: tx(fn, "DEFERRED"),
        immediate: tx(fn, "IMMEDIATE"),
        exclusive: tx(fn, "EXCLUSIVE"),
      }),
    close: () => db.close(),
  };
  return better(shim as unknown as Parameters<typeof better>[0]);
}

export function plainQueue(filename: string): Queue {
  return defineQueue({ connection: nodeConnection(filename), logger: silent });
}

export const doneCount = (queue: Queue): number =>
  queue.countJobs({ type: "noop", status: JobStatus.Done });

if (process.argv[1] === import.meta.filename) {
  const queue = plainQueue(process.argv[2]!);
  const worker = defineWorker("noop", (job) => void JSON.parse(job.data), {
    queue,
    logger: silent,
    pollIntervall: 10,
  });
  process.on("SIGTERM", () => void worker.stop().then(() => process.exit(0)));
  void worker.start();
}
