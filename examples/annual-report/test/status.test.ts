import type { ResultMeta } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { describeStatus } from "../src/status.ts";

const id = "0d4f7a52-8a43-4d34-9a53-2c6f1b5a9e10";
const meta = (status: string, result: unknown): ResultMeta => ({
  status,
  result,
  traceback: null,
  children: [],
  date_done: null,
  task_id: id,
});

describe("describeStatus", () => {
  it("says PENDING while the backend knows nothing", () => {
    expect(describeStatus(id, undefined)).toEqual({ id, state: "PENDING" });
  });

  it("passes the progress on", () => {
    const progress = { done: 3, total: 12, step: "March 2024 summed" };
    expect(describeStatus(id, meta("PROGRESS", progress))).toEqual({
      id,
      state: "PROGRESS",
      progress,
    });
  });

  it("links the finished report", () => {
    const result = { year: 2024, file: `${id}.html`, orders: 1, revenueCents: 2 };
    expect(describeStatus(id, meta("SUCCESS", result))).toEqual({
      id,
      state: "SUCCESS",
      url: `/reports/${id}`,
      year: 2024,
    });
  });

  it("gives the failure's type and message", () => {
    const failure = {
      exc_type: "NoDataError",
      exc_message: ["no sales data for 2018"],
      exc_module: null,
    };
    expect(describeStatus(id, meta("FAILURE", failure))).toEqual({
      id,
      state: "FAILURE",
      error: "NoDataError: no sales data for 2018",
    });
  });
});
