// The HTTP layer's guards, against a real (in-memory) broker: no network but 127.0.0.1.
import { request as httpRequest } from "node:http";
import { expect, it } from "vitest";
import { startDashboard } from "../src/index.ts";

const broker = `memory://dash-auth-${process.pid}`;

it("refuses to listen beyond loopback without credentials", async () => {
  await expect(startDashboard({ broker, host: "0.0.0.0", port: 0 })).rejects.toThrow(
    /0.0.0.0, which other machines can reach: give it a token/,
  );
});

it("with a token, refuses requests and actions without it", async () => {
  const dashboard = await startDashboard({
    broker,
    port: 0,
    auth: { token: "s3cret-token" },
    enableEvents: false,
  });
  try {
    const headers = { "content-type": "application/json", "x-celery-ts-dashboard": "1" };
    const body = JSON.stringify({ queue: "celery" });
    expect((await fetch(dashboard.url)).status).toBe(401);
    expect(
      (await fetch(`${dashboard.url}api/actions/purge`, { method: "POST", headers, body })).status,
    ).toBe(401);
    const auth = { authorization: "Bearer s3cret-token" };
    expect((await fetch(`${dashboard.url}api/overview`, { headers: auth })).status).toBe(200);
    const ok = await fetch(`${dashboard.url}api/actions/purge`, {
      method: "POST",
      headers: { ...headers, ...auth },
      body,
    });
    expect(await ok.json()).toMatchObject({ ok: true, message: "purged 0 messages from celery" });
    // A cross-site form cannot set the page's header: refused.
    const forged = await fetch(`${dashboard.url}api/actions/purge`, {
      method: "POST",
      headers: auth,
      body,
    });
    expect(forged.status).toBe(403);
    const bad = await fetch(`${dashboard.url}api/actions/rateLimit`, {
      method: "POST",
      headers: { ...headers, ...auth },
      body: JSON.stringify({ task: "t", rate: "fast" }),
    });
    expect(bad.status).toBe(400);
  } finally {
    await dashboard.close();
  }
});

it("with basic auth, asks the browser for it", async () => {
  const dashboard = await startDashboard({
    broker,
    port: 0,
    auth: { username: "ops", password: "pass-word-1" },
    enableEvents: false,
  });
  try {
    const refused = await fetch(dashboard.url);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toMatch(/^Basic/);
    const basic = `Basic ${Buffer.from("ops:pass-word-1").toString("base64")}`;
    const page = await fetch(dashboard.url, { headers: { authorization: basic } });
    expect(await page.text()).toContain("celery-ts dashboard");
  } finally {
    await dashboard.close();
  }
});

/** A raw request, to send the Host and Origin a rebinding page's browser would send. */
function raw(
  url: string,
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(new URL(path, url), { method, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end(method === "POST" ? JSON.stringify({ queue: "celery" }) : undefined);
  });
}

it("refuses a rebound name (a foreign Host) and actions from a foreign Origin", async () => {
  const dashboard = await startDashboard({ broker, port: 0, enableEvents: false });
  try {
    const { port } = new URL(dashboard.url);
    const action = { "content-type": "application/json", "x-celery-ts-dashboard": "1" };
    // A page on attacker.example whose name now resolves to 127.0.0.1: its Host is its own name.
    const rebound = await raw(dashboard.url, "/api/overview", { host: `attacker.example:${port}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain(`open it by one of those addresses`);
    const reboundPost = await raw(
      dashboard.url,
      "/api/actions/purge",
      { ...action, host: `attacker.example:${port}`, origin: `http://attacker.example:${port}` },
      "POST",
    );
    expect(reboundPost.status).toBe(403);
    // The right Host but another site's Origin: refused.
    const foreign = await raw(
      dashboard.url,
      "/api/actions/purge",
      { ...action, host: `127.0.0.1:${port}`, origin: "http://attacker.example" },
      "POST",
    );
    expect(foreign.status).toBe(403);
    expect(foreign.body).toContain("only from the dashboard's own page");
    // The page's own requests, by each loopback name, go through.
    for (const name of ["127.0.0.1", "localhost"]) {
      const host = `${name}:${port}`;
      expect((await raw(dashboard.url, "/api/overview", { host })).status).toBe(200);
      const own = await raw(
        dashboard.url,
        "/api/actions/purge",
        { ...action, host, origin: `http://${host}` },
        "POST",
      );
      expect(own.status).toBe(200);
    }
  } finally {
    await dashboard.close();
  }
});
