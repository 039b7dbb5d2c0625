import { describe, expect, it } from "vitest";
import { allowsGlobalQos } from "../src/internal/connection.ts";

describe("global QoS", () => {
  it("is used on RabbitMQ before 4.3 only", () => {
    const rabbit = (version: string) => allowsGlobalQos({ product: "RabbitMQ", version });
    expect(["3.8.0", "3.10.8", "3.13.7", "4.0.5", "4.2.1"].every(rabbit)).toBe(true);
    expect(["4.3.0", "4.10.1", "5.0.0"].some(rabbit)).toBe(false);
    expect(allowsGlobalQos({ product: "LavinMQ", version: "2.0.0" })).toBe(false);
  });
});
