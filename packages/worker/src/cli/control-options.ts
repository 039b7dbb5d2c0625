import { hostname } from "node:os";
import type { ParseArgsConfig } from "node:util";
import type { ControlOptions } from "../control/worker-control.ts";

/** The `celery-ts worker` options of remote control, revokes and events, as Celery names them. */
export const CONTROL_OPTIONS = {
  hostname: { type: "string", short: "n" },
  events: { type: "boolean", short: "E" },
  "without-heartbeat": { type: "boolean" },
  "without-control": { type: "boolean" },
  statedb: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const CONTROL_USAGE = `  -n, --hostname <name>       node name for remote control and events [default celery-ts@%h]
  -E, --events                send task events (for celery events, Flower)
      --without-heartbeat     send no worker-online/heartbeat/offline events
      --without-control       answer no remote control (inspect, control, revoke)
      --statedb <path>        keep revoked task ids in this file across restarts`;

/**
 * Celery's node name rules: `%h` is the host name, `%n` its first label, a bare name gets
 * `@<host>`. Each process of a supervised group is a node of its own, `<name>.<pid>@<host>`.
 */
export function nodeName(name: string, supervised: boolean): string {
  const host = hostname();
  const expanded = name.replaceAll("%h", host).replaceAll("%n", host.split(".")[0] ?? host);
  const [node, at = host] = expanded.includes("@") ? expanded.split(/@(.*)/s) : [expanded, host];
  return supervised ? `${node}.${process.pid}@${at}` : `${node}@${at}`;
}

/** The worker options the parsed flags ask for. */
export function controlWorkerOptions(
  values: Record<string, string | boolean | undefined>,
): ControlOptions & { hostname: string } {
  const name = typeof values.hostname === "string" ? values.hostname : "celery-ts@%h";
  return {
    hostname: nodeName(name, process.send !== undefined),
    ...(values.events === true && { taskEvents: true }),
    ...(values["without-heartbeat"] === true && { heartbeat: false }),
    ...(values["without-control"] === true && { remoteControl: false }),
    ...(typeof values.statedb === "string" && { stateDb: values.statedb }),
  };
}
