import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { ValidationError } from "../../libs/errors/index.ts";
import { postOnce, WebhookError } from "../../libs/webhooks/http.ts";
import { checkServerConfig, RESERVED_SERVER_HEADERS } from "../../libs/webhooks/server-config.ts";
import {
  assertPublicUrl,
  checkUrlWhenSaved,
  type HostLookup,
  isPublicAddress,
  pinnedLookup,
  UnsafeUrlError,
} from "../../libs/webhooks/ssrf.ts";
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
  // Every notation of a literal address is normalised by the URL parser before the check.
  ["http://0177.0.0.1/", "127.0.0.1"],
  ["http://0x7f.1/", "127.0.0.1"],
  ["http://127.1/", "127.0.0.1"],
  ["http://169.254.169.254./latest/", "169.254.169.254"],
  ["http://[::127.0.0.1]/", "::7f00:1"],
  ["http://[fd00:ec2::254]/", "fd00:ec2::254"],
  ["http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"],
  ["http://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe::"],
  ["http://100.100.100.200/", "100.100.100.200"],
  // Names that can only be local or a metadata service are refused without asking DNS.
  ["http://metadata.google.internal/computeMetadata/v1/", undefined],
  ["http://metadata.goog/", undefined],
  ["http://LOCALHOST./", undefined],
  ["http://api.localhost/", undefined],
  ["http://printer.local/", undefined],
] as const;

/** A resolver that answers from a table (and fails like getaddrinfo for anything else). */
function table(answers: Record<string, string[]>): HostLookup {
  return async (host) => {
    const addresses = answers[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
}

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

  it("refuses a user name or password in the URL, even when private targets are allowed", async () => {
    for (const url of ["https://user:pass@hooks.example.com/", "https://token@8.8.8.8/"]) {
      await assert.rejects(assertPublicUrl(url, { allowPrivate: true }), (err: unknown) => {
        assert.ok(err instanceof UnsafeUrlError);
        assert.equal(err.reason, "credentials");
        assert.match(err.message, /server\.headers/);
        return true;
      });
    }
  });

  it("refuses a host name that resolves to a private address, naming the address", async () => {
    const lookup = table({ "rebind.example.com": ["8.8.8.8", "10.0.0.7"] });
    await assert.rejects(
      assertPublicUrl("https://rebind.example.com/hook", { allowPrivate: false, lookup }),
      (err: unknown) => {
        assert.ok(err instanceof UnsafeUrlError);
        assert.equal(err.address, "10.0.0.7");
        assert.match(err.message, /rebind\.example\.com, that resolves to 10\.0\.0\.7 \(private\)/);
        return true;
      },
    );
  });

  describe("when a URL is saved", () => {
    const lookup = table({
      "hooks.example.com": ["93.184.215.14"],
      "intranet.example.com": ["192.168.1.20"],
    });

    it("refuses what sending would refuse, before anything is sent", async () => {
      for (const url of ["http://169.254.169.254/", "https://intranet.example.com/", "ftp://8.8.8.8/"]) {
        await assert.rejects(checkUrlWhenSaved(url, { allowPrivate: false, lookup }), UnsafeUrlError);
      }
      await checkUrlWhenSaved("https://hooks.example.com/vapi", { allowPrivate: false, lookup });
    });

    it("accepts a host that does not resolve (yet): the check at send time stays", async () => {
      await checkUrlWhenSaved("https://not-yet-deployed.example.com/", { allowPrivate: false, lookup });
      const never: HostLookup = () => new Promise(() => {});
      await checkUrlWhenSaved("https://slow-dns.example.com/", {
        allowPrivate: false,
        lookup: never,
        lookupTimeoutMs: 10,
      });
      await assert.rejects(
        assertPublicUrl("https://not-yet-deployed.example.com/", { allowPrivate: false, lookup }),
        (err: unknown) => err instanceof UnsafeUrlError && err.reason === "unresolvable",
      );
    });
  });

  describe("server config", () => {
    const check = (server: unknown) => checkServerConfig(server, "body.server", { allowPrivate: true });
    const refused = async (server: unknown, message: RegExp) =>
      assert.rejects(check(server), (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.match(err.message, message);
        return true;
      });

    it("refuses header values with CR, LF or NUL and names the header", async () => {
      await refused(
        { headers: { "X-Team": "a\r\nX-Injected: 1" } },
        /body\.server\.headers\["X-Team"\] must not contain CR, LF, NUL/,
      );
      await refused({ headers: { "X-Team": "a\u0000b" } }, /body\.server\.headers\["X-Team"\]/);
      await refused({ secret: "s3cret\n" }, /body\.server\.secret must not contain CR, LF, NUL/);
    });

    it("refuses header names that are not RFC 7230 tokens", async () => {
      await refused(
        { headers: { "X Team": "a" } },
        /body\.server\.headers\["X Team"\] is not a valid header name/,
      );
      await refused({ headers: { "X-Team:": "a" } }, /is not a valid header name/);
    });

    it("refuses headers the platform sets itself, in any case", async () => {
      for (const name of [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "X-Vapi-Signature",
        "x-signature",
      ]) {
        await refused(
          { headers: { [name]: "x" } },
          new RegExp(`headers\\["${name}"\\] is set by the platform`),
        );
      }
      assert.ok(RESERVED_SERVER_HEADERS.has("x-vapi-secret"));
    });

    it("accepts ordinary headers, secrets and URLs", async () => {
      await check({
        url: "http://127.0.0.1:8080/hook",
        secret: "s3cret",
        headers: { Authorization: "Bearer abc", "X-Team": "support é" },
      });
      await refused(
        { url: "javascript:alert(1)" },
        /body\.server\.url must use http or https, not javascript/,
      );
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
