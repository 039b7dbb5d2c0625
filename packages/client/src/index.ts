export type { AsyncResult, GetOptions } from "./async-result.ts";
export { DEFAULT_PUBLISH_RETRY, createClient } from "./client.ts";
export type { Client, ClientOptions } from "./client.ts";
export { DEFAULT_QUEUE } from "./send-options.ts";
export type { SendOptions, SendTaskOptions } from "./send-options.ts";
export type { ArgsPrefix, TaskCall, TaskHandle } from "./task-handle.ts";
export { chain, chord, chunks, group, map, s, si, starmap } from "./canvas/signature.ts";
export type {
  AnySig,
  ArgHead,
  ArgSuffix,
  ChainSteps,
  GroupSig,
  Sig,
  SigIn,
  SigOut,
  SignatureKind,
  SignatureOptions,
  StepCannotTakePreviousResult,
} from "./canvas/signature.ts";
export type { AnyResult, GroupResult } from "./canvas/group-result.ts";
export type { CanvasSendOptions } from "./canvas/send-canvas.ts";
export type { Control, RevokeOptions } from "./control.ts";
