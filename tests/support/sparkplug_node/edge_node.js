// A Sparkplug B edge node driven line by line over stdin (one JSON command per line), built
// on Eclipse Tahu's client (sparkplug-client: seq, bdSeq, births, the NDEATH will) and payload
// library (sparkplug-payload). Each command is answered with one JSON line on stdout.
"use strict";
const readline = require("readline");
const sparkplug = require("sparkplug-client");

let client = null;
let rebirthWaiters = [];
let rebirthsSeen = 0;

function reply(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

function isRebirth(payload) {
  return (payload.metrics || []).some(
    (m) => m.name === "Node Control/Rebirth" && m.value === true);
}

const ops = {
  connect(cmd) {
    client = sparkplug.newClient({
      serverUrl: cmd.url, username: "", password: "", groupId: cmd.group,
      edgeNode: cmd.node, clientId: cmd.clientId || `tahu-${cmd.node}`,
      publishDeath: cmd.publishDeath !== false, version: "spBv1.0",
    });
    client.on("ncmd", (payload) => {
      if (isRebirth(payload)) {
        rebirthsSeen += 1;
        const waiting = rebirthWaiters;
        rebirthWaiters = [];
        waiting.forEach((resolve) => resolve());
      }
    });
    return new Promise((resolve) => client.on("birth", () => resolve({ ok: "connected" })));
  },
  nbirth(cmd) {
    client.publishNodeBirth({ timestamp: cmd.timestamp, metrics: cmd.metrics });
    return { ok: "nbirth", seq: client.seq };
  },
  dbirth(cmd) {
    client.publishDeviceBirth(cmd.device, { timestamp: cmd.timestamp, metrics: cmd.metrics });
    return { ok: "dbirth" };
  },
  ndata(cmd) {
    client.publishNodeData({ timestamp: cmd.timestamp, metrics: cmd.metrics });
    return { ok: "ndata" };
  },
  ddata(cmd) {
    client.publishDeviceData(cmd.device, { timestamp: cmd.timestamp, metrics: cmd.metrics });
    return { ok: "ddata" };
  },
  ddeath(cmd) {
    client.publishDeviceDeath(cmd.device, { timestamp: cmd.timestamp, metrics: [] });
    return { ok: "ddeath" };
  },
  skip_seq(cmd) {  // lose messages on purpose: the next one arrives with a seq gap
    client.seq = (client.seq + cmd.n) % 256;
    return { ok: "skipped", seq: client.seq };
  },
  wait_rebirth(cmd) {
    if (rebirthsSeen > (cmd.after || 0)) {
      return { ok: "rebirth", seen: rebirthsSeen };
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: "no rebirth request" }), cmd.timeout_ms);
      rebirthWaiters.push(() => { clearTimeout(timer); resolve({ ok: "rebirth", seen: rebirthsSeen }); });
    });
  },
  stop() {
    client.stop();  // publishes NDEATH (bdSeq) first
    return new Promise((resolve) => setTimeout(() => resolve({ ok: "stopped" }), 200));
  },
};

const input = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
input.on("line", (line) => {
  queue = queue.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
      reply(await ops[cmd.op](cmd));
    } catch (err) {
      reply({ error: String(err && err.stack || err) });
    }
  });
});
input.on("close", () => queue.then(() => process.exit(0)));
