import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { postOnce, WebhookError } from "../../libs/webhooks/http.ts";
import { assertPublicUrl, isPublicAddress, pinnedLookup, UnsafeUrlError } from "../../libs/webhooks/ssrf.ts";
import { type CustomerServer, startCustomerServer } from "./customer-server.ts";

const REFUSED = [
  ["http://127.0.0.1/hook", "127.0.0.1"],
  ["http://localhost:8080/hook", undefined],
  ["http://10.1.2.3/", "10.1.2.3"],
  ["http://172.16.5.4/", "172.16.5.4"],
  ["http://192.168.0.10/", "192.168.0.10"],
  ["http://169.254.169.254/latest/meta-data/", "169.254.169.254"],
  ["http://100.64.0.1/", "100.64.0.1"],
  ["http://0.0.0.0/", "0.0.0.0"],
  ["http://224.0.0.1/", "224.0.0.1"],
  ["http://0x7f000001/", "127.0.0.1"],
  ["http://2130706433/", "127.0.0.1"],
  ["http://[::1]/", "::1"],
  ["http://[::]/", "::"],
  ["http://[::ffff:127.0.0.1]/", undefined],
  ["http://[::ffff:a9fe:a9fe]/", undefined],
  ["http://[fc00::1]/", "fc00::1"],
  ["http://[fd12:3456::1]/", "fd12:3456::1"],
  ["http://[fe80::1]/", "fe80::1"],
] as const;

describe("SSRF guard", () => {
  for (const [url, address] of REFUSED) {
    it(`refuses ${url}`, async () => {
      await assert.rejects(assertPublicUrl(url, { allowPrivate: false }), (err: unknown) => {
        assert.ok(err instanceof UnsafeUrlError);
        assert.equal(err.reason, "private-address");
        if (address) assert.equal(err.address, address);
        assert.match(err.message, /not a public address/);
        assert.match(err.message, /ALLOW_PRIVATE_WEBHOOK_URLS/);
        return true;
      });
    });
  }

  it("names the metadata address and its range in the message", async () => {
    await assert.rejects(
      assertPublicUrl("http://169.254.169.254/", { allowPrivate: false }),
      /169\.254\.169\.254 \(linkLocal\)/,
    );
  });

  it("allows public addresses and pins the one it checked", async () => {
    const v4 = await assertPublicUrl("https://8.8.8.8/hook", { allowPrivate: false });
    assert.deepEqual([v4.address, v4.family], ["8.8.8.8", 4]);
    const v6 = await assertPublicUrl("https://[2606:4700:4700::1111]/hook", { allowPrivate: false });
    assert.deepEqual([v6.address, v6.family], ["2606:4700:4700::1111", 6]);
    assert.equal(isPublicAddress("1.1.1.1"), true);
    assert.equal(isPublicAddress("::ffff:8.8.8.8"), true);
    assert.equal(isPublicAddress("::ffff:10.0.0.1"), false);
    assert.equal(isPublicAddress("not-an-ip"), false);
  });

  it("refuses other schemes and malformed URLs even when private targets are allowed", async () => {
    for (const url of ["ftp://8.8.8.8/x", "file:///etc/passwd", "gopher://8.8.8.8/"]) {
      await assert.rejects(assertPublicUrl(url, { allowPrivate: true }), (err: unknown) => {
        assert.ok(err instanceof UnsafeUrlError);
        assert.equal(err.reason, "unsupported-protocol");
        return true;
      });
    }
    await assert.rejects(assertPublicUrl("not a url", { allowPrivate: true }), (err: unknown) => {
      assert.ok(err instanceof UnsafeUrlError);
      assert.equal(err.reason, "invalid-url");
      return true;
    });
  });

  it("allows loopback with allowPrivate", async () => {
    const t = await assertPublicUrl("http://127.0.0.1:9/hook", { allowPrivate: true });
    assert.equal(t.url.hostname, "127.0.0.1");
    assert.equal(t.address, undefined);
  });

  describe("requests", () => {
    let customer: CustomerServer;
    before(async () => {
      customer = await startCustomerServer();
    });
    after(async () => {
      await customer.close();
    });

    it("sends nothing to a loopback server unless private targets are allowed", async () => {
      await assert.rejects(
        postOnce(
          customer.url,
          "{}",
          { "content-type": "application/json" },
          { timeoutMs: 2000, allowPrivate: false },
        ),
        (err: unknown) => {
          assert.ok(err instanceof WebhookError);
          assert.equal(err.kind, "unsafe-url");
          return true;
        },
      );
      assert.equal(customer.received.length, 0);
      const res = await postOnce(
        customer.url,
        "{}",
        { "content-type": "application/json" },
        {
          timeoutMs: 2000,
          allowPrivate: true,
        },
      );
      assert.equal(res.status, 200);
      assert.equal(customer.received.length, 1);
    });

    it("connects to the pinned address whatever the host name resolves to", async () => {
      const lookup = pinnedLookup({ url: new URL("http://x"), address: "127.0.0.1", family: 4 });
      assert.ok(lookup);
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          `http://rebinding.invalid:${customer.port}/webhook`,
          { method: "POST", lookup, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end("{}");
      });
      assert.equal(status, 200);
      assert.equal(customer.received.at(-1)?.headers.host, `rebinding.invalid:${customer.port}`);
    });
  });
});
