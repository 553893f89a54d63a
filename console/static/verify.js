// Verification in the browser: the page recomputes a case's hash chain from the stored event
// bodies with the browser's own SHA-256 (WebCrypto), so an overseer need not take the server's
// word for it. The rule is docs/audit.md's (workflow/chain.py):
//
//   hash(event) = sha256( bytes of prev_hash (hex) || UTF-8 of the RFC 8785 canonical JSON of the body )
//   prev_hash of seq 1 = 64 zeros; each event's prev_hash is the hash of the one before.
//
// The canonical form is computed here, not taken from the server: the stored body text is parsed
// and written again by `canonicalize`, RFC 8785 (JSON Canonicalization Scheme) for the values a
// log holds: objects with keys sorted by UTF-16 code units, arrays, strings escaped as ECMAScript's
// JSON.stringify escapes them, numbers in ECMAScript's shortest form, true, false, null.
// tests/console/test_verify_js.py checks it against Python's rfc8785 on many bodies.
(function (root) {
  "use strict";

  function canonicalize(value) {
    if (value === null || typeof value === "boolean") {
      return JSON.stringify(value);
    }
    if (typeof value === "number") {
      if (!isFinite(value)) {
        throw new Error("RFC 8785 has no form for " + value);
      }
      // ECMAScript's Number to String is RFC 8785's number serialisation (-0 is written 0).
      return JSON.stringify(value);
    }
    if (typeof value === "string") {
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) {
      return "[" + value.map(canonicalize).join(",") + "]";
    }
    if (typeof value === "object") {
      // Default sort compares UTF-16 code units, as RFC 8785 section 3.2.3 asks.
      var keys = Object.keys(value).sort();
      return "{" + keys.map(function (key) {
        return JSON.stringify(key) + ":" + canonicalize(value[key]);
      }).join(",") + "}";
    }
    throw new Error("a log body holds no " + typeof value);
  }

  function hexToBytes(hex) {
    if (!/^[0-9a-f]{64}$/.test(hex)) {
      throw new Error("not a sha256 in hex: " + hex);
    }
    var bytes = new Uint8Array(32);
    for (var i = 0; i < 32; i++) {
      bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
    }
    return bytes;
  }

  function bytesToHex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  async function link(prevHash, canonicalText) {
    var body = new TextEncoder().encode(canonicalText);
    var joined = new Uint8Array(32 + body.length);
    joined.set(hexToBytes(prevHash), 0);
    joined.set(body, 32);
    return bytesToHex(await root.crypto.subtle.digest("SHA-256", joined));
  }

  var GENESIS = "0000000000000000000000000000000000000000000000000000000000000000";

  // events: [{seq, body (the stored text), prev_hash, hash}] in order. Answers
  // {ok: true, count} or {ok: false, seq, reason}: the first event whose link does not hold.
  async function verifyChain(caseId, events) {
    var previous = GENESIS;
    for (var i = 0; i < events.length; i++) {
      var event = events[i];
      var expectedSeq = i + 1;
      if (event.seq !== expectedSeq) {
        return { ok: false, seq: expectedSeq, reason: "missing" };
      }
      if (event.prev_hash !== previous) {
        return { ok: false, seq: event.seq, reason: "link" };
      }
      var doc;
      try {
        doc = JSON.parse(event.body);
      } catch (error) {
        return { ok: false, seq: event.seq, reason: "unreadable" };
      }
      if (!doc || doc.case_id !== caseId || doc.seq !== event.seq) {
        return { ok: false, seq: event.seq, reason: "misplaced" };
      }
      var canonical = canonicalize(doc);
      if (canonical !== event.body) {
        // The stored bytes are not the canonical form of what they say (a byte changed in
        // spacing, escaping or key order): what was hashed can no longer be what is stored.
        return { ok: false, seq: event.seq, reason: "altered" };
      }
      var digest = await link(previous, canonical);
      if (digest !== event.hash) {
        return { ok: false, seq: event.seq, reason: "hash" };
      }
      previous = event.hash;
    }
    return { ok: true, count: events.length, head: previous };
  }

  function show(badge, result) {
    var text = badge.dataset;
    badge.classList.remove("pending");
    if (result.ok) {
      badge.classList.add("verified");
      badge.textContent = text.verified.replace("{count}", String(result.count));
      badge.dataset.result = "verified";
    } else {
      badge.classList.add("broken");
      badge.textContent = text.broken.replace("{seq}", String(result.seq));
      badge.dataset.result = "broken";
      badge.dataset.brokenSeq = String(result.seq);
      var row = document.getElementById("event-" + result.seq);
      if (row) {
        row.classList.add("broken");
      }
    }
  }

  async function run(badge) {
    try {
      if (!root.crypto || !root.crypto.subtle) {
        throw new Error("no WebCrypto here (a secure context is needed)");
      }
      var answer = await fetch(badge.dataset.chainUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) {
        throw new Error("the log could not be read: " + answer.status);
      }
      var chain = await answer.json();
      show(badge, await verifyChain(chain.case_id, chain.events));
    } catch (error) {
      badge.classList.remove("pending");
      badge.classList.add("broken");
      badge.dataset.result = "error";
      badge.textContent = badge.dataset.failed + " " + error.message;
    }
  }

  root.disputesChain = { canonicalize: canonicalize, verifyChain: verifyChain, GENESIS: GENESIS };
  if (typeof document !== "undefined") {
    var start = function () {
      var badge = document.getElementById("verification");
      if (badge) {
        run(badge);
      }
    };
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start);
    } else {
      start();
    }
  }
})(typeof window !== "undefined" ? window : globalThis);
