<?php

// Send one chat request to hfbus and print the answer as it streams in.
//
//   composer require basis-company/nats
//   NATS_HOST=127.0.0.1 php chat.php "Write a haiku about NATS"
//
// Same flow as examples/node/publish-chat.mjs: subscribe to an inbox, publish the request with the inbox as
// reply subject (and in `reply_to`, for deployments in durable mode), print each `chunk`'s delta, stop at the
// `result` (exit 0) or the `error` (exit 1). The message shapes are in schemas/generated/chat.*.schema.json.

declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

use Basis\Nats\Client;
use Basis\Nats\Configuration;
use Basis\Nats\Message\Payload;

$prefix = getenv('HFBUS_PREFIX') ?: 'ai';
$prompt = $argv[1] ?? 'Hello from PHP';

$client = new Client(new Configuration([
    'host' => getenv('NATS_HOST') ?: '127.0.0.1',
    'port' => (int) (getenv('NATS_PORT') ?: 4222),
    'timeout' => 5,
]));

$id = bin2hex(random_bytes(16)); // any unique id of letters, digits and _ : = + -
$inbox = '_INBOX.' . $id;
$status = null;

$client->subscribe($inbox, function (Payload $message) use (&$status): void {
    $out = json_decode($message->body, true);
    if (!is_array($out) || !isset($out['type'])) {
        return; // JetStream's publish ack, in durable mode
    }
    switch ($out['type']) {
        case 'chunk':
            echo $out['delta'];
            break;
        case 'result':
            echo PHP_EOL;
            $status = 0;
            break;
        case 'error':
            fwrite(STDERR, "error {$out['code']}: {$out['message']}" . PHP_EOL);
            $status = 1;
            break;
        // 'progress' (long media jobs) and types added later: nothing to print
    }
});

$request = [
    'id' => $id,
    'messages' => [['role' => 'user', 'content' => $prompt]],
    'max_tokens' => 256,
    'reply_to' => $inbox,
];
$client->publish(
    "$prefix.chat",
    new Payload(json_encode($request), ['Content-Type' => 'application/json', 'Nats-Msg-Id' => $id]),
    $inbox,
);

$deadline = microtime(true) + 120;
while ($status === null && microtime(true) < $deadline) {
    $client->process(1); // handles at most one message, waiting up to a second
}
$client->unsubscribe($inbox);
exit($status ?? 2);
