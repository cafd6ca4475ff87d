// Reads MCAP files with the official TypeScript libraries (@mcap/core,
// @mcap/nodejs, @mcap/support) and prints, for each file named on the
// command line, one JSON line saying what those readers found: channels,
// schemas, message counts and first/last log times per channel, metadata
// records, and whether the file is complete (readable through its index).
//
// Every file is read twice: record by record from the start
// (McapStreamReader, which also reads a file cut short), and, unless that
// found no footer, through its summary and index (McapIndexedReader). Times
// are printed as decimal strings (they are 64-bit).
//
//	node check.mjs FILE.mcap...
import { open, readFile } from "node:fs/promises";
import { McapIndexedReader, McapStreamReader } from "@mcap/core";
import { FileHandleReadable } from "@mcap/nodejs";
import { loadDecompressHandlers } from "@mcap/support";

function newTally() {
  return { channels: new Map(), schemas: new Map(), counts: new Map(), first: new Map(), last: new Map(), metadata: [], messages: 0 };
}

function addMessage(t, msg) {
  const id = msg.channelId;
  t.messages++;
  t.counts.set(id, (t.counts.get(id) ?? 0) + 1);
  if (!t.first.has(id) || msg.logTime < t.first.get(id)) t.first.set(id, msg.logTime);
  if (!t.last.has(id) || msg.logTime > t.last.get(id)) t.last.set(id, msg.logTime);
}

function report(t) {
  const channels = [...t.channels.values()]
    .sort((a, b) => a.id - b.id)
    .map((c) => {
      const s = t.schemas.get(c.schemaId);
      return {
        id: c.id,
        topic: c.topic,
        messageEncoding: c.messageEncoding,
        schemaName: s?.name ?? "",
        schemaEncoding: s?.encoding ?? "",
        schemaBytes: s ? s.data.length : 0,
        metadata: Object.fromEntries(c.metadata),
        messages: t.counts.get(c.id) ?? 0,
        firstLogTime: String(t.first.get(c.id) ?? 0n),
        lastLogTime: String(t.last.get(c.id) ?? 0n),
      };
    });
  return { messages: t.messages, channels, metadata: t.metadata };
}

async function readStream(path, handlers) {
  const t = newTally();
  const reader = new McapStreamReader({ decompressHandlers: handlers, validateCrcs: true });
  reader.append(await readFile(path));
  let footer = false;
  let error;
  try {
    for (let rec; (rec = reader.nextRecord()); ) {
      switch (rec.type) {
        case "Schema":
          t.schemas.set(rec.id, rec);
          break;
        case "Channel":
          t.channels.set(rec.id, rec);
          break;
        case "Message":
          addMessage(t, rec);
          break;
        case "Metadata":
          t.metadata.push({ name: rec.name, metadata: Object.fromEntries(rec.metadata) });
          break;
        case "Footer":
          footer = true;
          break;
      }
    }
  } catch (e) {
    error = String(e?.message ?? e);
  }
  return { ...report(t), done: reader.done(), footer, error };
}

async function readIndexed(path, handlers) {
  const handle = await open(path, "r");
  try {
    const reader = await McapIndexedReader.Initialize({ readable: new FileHandleReadable(handle), decompressHandlers: handlers });
    const t = newTally();
    for (const [id, s] of reader.schemasById) t.schemas.set(id, s);
    for (const [id, c] of reader.channelsById) t.channels.set(id, c);
    for await (const msg of reader.readMessages({ validateCrcs: true })) addMessage(t, msg);
    for await (const m of reader.readMetadata()) t.metadata.push({ name: m.name, metadata: Object.fromEntries(m.metadata) });
    const st = reader.statistics;
    return {
      ...report(t),
      chunks: reader.chunkIndexes.length,
      statistics: st && {
        messageCount: String(st.messageCount),
        channelCount: st.channelCount,
        schemaCount: st.schemaCount,
        messageStartTime: String(st.messageStartTime),
        messageEndTime: String(st.messageEndTime),
        channelMessageCounts: Object.fromEntries([...st.channelMessageCounts].map(([k, v]) => [k, String(v)])),
      },
    };
  } finally {
    await handle.close();
  }
}

const handlers = await loadDecompressHandlers();
let failed = false;
for (const path of process.argv.slice(2)) {
  const out = { file: path };
  try {
    out.stream = await readStream(path, handlers);
  } catch (e) {
    out.stream = { error: String(e?.message ?? e) };
    failed = true;
  }
  if (out.stream.footer) {
    try {
      out.indexed = await readIndexed(path, handlers);
    } catch (e) {
      out.indexed = { error: String(e?.message ?? e) };
    }
  }
  console.log(JSON.stringify(out));
}
process.exit(failed ? 1 : 0);
