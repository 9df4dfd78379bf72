// Calls OpenAI through a wrapi stage with the official `openai` npm SDK,
// unchanged: `wrapi connect` signs for it.
//
//   wrapi connect --stage dev --project my-project   # prints the export line
//   export OPENAI_BASE_URL=http://127.0.0.1:8788/v1 OPENAI_API_KEY=unused
//   node connect.mjs
//
// The integration tests run this very file (see docs/use-it.md).
import OpenAI from "openai";

const client = new OpenAI(); // reads OPENAI_BASE_URL and OPENAI_API_KEY
const messages = [{ role: "user", content: "What is your refund window for annual plans?" }];

const chat = await client.chat.completions.create({ model: "gpt-4o-mini", messages });

const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages, stream: true });
let streamed = "";
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}

const response = await client.responses.create({ model: "gpt-5-mini", input: "What is your refund window?" });

// Bill one call to another project: the header overrides --project.
const embedding = await client.embeddings.create(
  { model: "text-embedding-3-small", input: "The food was delicious." },
  { headers: { "openai-proxy-project": "research" } },
);

console.log(JSON.stringify({
  chat: chat.choices[0].message.content,
  chat_stream: streamed,
  responses: response.output_text,
  embedding_dims: embedding.data[0].embedding.length,
}, null, 2));
