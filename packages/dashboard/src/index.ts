export { startDashboard } from "./dashboard.ts";
export type { Dashboard, DashboardOptions } from "./dashboard.ts";
export type { DashboardAuth } from "./internal/auth.ts";
export { FleetState } from "./fleet-state.ts";
export type { FleetStateOptions, TaskView, WorkerView } from "./fleet-state.ts";
export { run } from "./cli.ts";
