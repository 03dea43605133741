// Stream a chat through the hfbus gateway with the official OpenAI SDK: any OpenAI client works unchanged.
//
//   HFBUS_KEY=hfb-… node openai-chat.mjs "Write a haiku about NATS" [--model deepseek-r1] [--base-url URL]
//
// Environment: HFBUS_KEY (a virtual key from `hfbus keys create` or the `make run` banner),
// HFBUS_GATEWAY_URL (default http://127.0.0.1:8080/v1).
// Exit status: 0 after the answer; 1 when the gateway answers an error (its status and code go to stderr).
import OpenAI from "openai";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "deepseek-r1" },
    "base-url": { type: "string", default: process.env.HFBUS_GATEWAY_URL || "http://127.0.0.1:8080/v1" },
    "max-tokens": { type: "string" },
  },
});

const client = new OpenAI({ baseURL: values["base-url"], apiKey: process.env.HFBUS_KEY, maxRetries: 0 });
try {
  const stream = await client.chat.completions.create({
    model: values.model,
    messages: [{ role: "user", content: positionals.join(" ") || "Hello from Node.js" }],
    stream: true,
    stream_options: { include_usage: true },
    ...(values["max-tokens"] ? { max_tokens: Number(values["max-tokens"]) } : {}),
  });
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta;
    if (delta?.content) process.stdout.write(delta.content);
    if (chunk.usage) process.stderr.write(`\n[${chunk.usage.prompt_tokens}+${chunk.usage.completion_tokens} tokens]\n`);
  }
  process.stdout.write("\n");
} catch (err) {
  if (err instanceof OpenAI.APIError) {
    process.stderr.write(`error ${err.status ?? "stream"} ${err.code ?? ""}: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
