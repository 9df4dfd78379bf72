// The integration scenarios' Node side (run by integration/scenarios_test.go):
// the official `openai` npm SDK and `@langchain/openai`, unchanged, against
// a wrapi stage at OPENAI_BASE_URL (the `wrapi connect` sidecar, or the
// proxy itself with a virtual key in OPENAI_API_KEY). The project billed is
// sent as openai-wrapi's openai-proxy-project header. Prints JSON.
//
//   node scenarios.mjs sdk        chat, chat streams (with and without include_usage), responses stream, embeddings
//   node scenarios.mjs budget     one request over budget: the error, and how many HTTP attempts the SDK made
//   node scenarios.mjs langchain  ChatOpenAI invoke and stream
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";

const project = process.env.WRAPI_IT_PROJECT ?? "N/A";
const headers = { "openai-proxy-project": project };
let attempts = 0;
const countingFetch = (url, init) => {
  attempts++;
  return fetch(url, init);
};
const client = new OpenAI({ defaultHeaders: headers, fetch: countingFetch });
const messages = [{ role: "user", content: "What is your refund window for annual plans?" }];

async function chatStream(streamOptions) {
  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini", messages, stream: true, ...(streamOptions ? { stream_options: streamOptions } : {}),
  });
  let text = "", chunks = 0, usage = null, usageChunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) {
      usageChunks++;
      usage = chunk.usage;
    }
  }
  return { text, chunks, usage_chunks: usageChunks, total_tokens: usage?.total_tokens ?? 0 };
}

async function sdk() {
  const chat = await client.chat.completions.create({ model: "gpt-4o-mini", messages });
  const plain = await chatStream(null);
  const withUsage = await chatStream({ include_usage: true });
  const rs = await client.responses.create({ model: "o4-mini", input: "What is your refund window?", stream: true });
  const types = [];
  let completed = null;
  for await (const ev of rs) {
    types.push(ev.type);
    if (ev.type === "response.completed") completed = ev.response;
  }
  const emb = await client.embeddings.create({ model: "text-embedding-3-small", input: "The food was delicious.", dimensions: 8 });
  return {
    chat: chat.choices[0].message.content,
    chat_total_tokens: chat.usage.total_tokens,
    chat_stream: plain,
    chat_stream_usage: withUsage,
    responses_events: types.length,
    responses_last: types[types.length - 1],
    responses_text: completed?.output_text ?? completed?.output?.filter((o) => o.type === "message").flatMap((o) => o.content).map((c) => c.text).join("") ?? "",
    responses_total_tokens: completed?.usage?.total_tokens ?? 0,
    embedding_dims: emb.data[0].embedding.length,
    attempts,
  };
}

async function budget() {
  // The default client retries twice on 429: a budget refusal says
  // x-should-retry: false, so exactly one attempt must be made.
  try {
    await client.chat.completions.create({ model: "gpt-4o-mini", messages, max_completion_tokens: 16384 });
    return { status: 200, attempts };
  } catch (err) {
    return {
      status: err.status, type: err.type, code: err.code,
      should_retry: err.headers?.get?.("x-should-retry") ?? null, attempts,
    };
  }
}

async function langchain() {
  const model = new ChatOpenAI({
    model: "gpt-4o-mini",
    apiKey: process.env.OPENAI_API_KEY,
    configuration: { baseURL: process.env.OPENAI_BASE_URL, defaultHeaders: headers, fetch: countingFetch },
  });
  const msg = await model.invoke("What is your refund window for annual plans?");
  let streamed = "";
  for await (const chunk of await model.stream("What is your refund window for annual plans?")) {
    streamed += typeof chunk.content === "string" ? chunk.content : "";
  }
  return {
    invoke: msg.content,
    invoke_total_tokens: msg.usage_metadata?.total_tokens ?? 0,
    stream: streamed,
    attempts,
  };
}

const mode = process.argv[2];
const run = { sdk, budget, langchain }[mode];
if (!run) {
  console.error(`usage: node scenarios.mjs sdk|budget|langchain (got ${mode})`);
  process.exit(2);
}
console.log(JSON.stringify(await run(), null, 2));
