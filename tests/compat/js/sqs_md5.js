// Drives Strato's SQS with the AWS SDK for JavaScript v3, which recomputes
// the MD5 of every body it sends and receives (SendMessage,
// SendMessageBatch, ReceiveMessage) and throws on a mismatch.
// Usage: node sqs_md5.js ENDPOINT; prints a JSON summary.
const {
  SQSClient, CreateQueueCommand, SendMessageCommand, SendMessageBatchCommand,
  ReceiveMessageCommand, DeleteMessageBatchCommand,
} = require("@aws-sdk/client-sqs");

async function main() {
  const client = new SQSClient({
    endpoint: process.argv[2],
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: "js-md5" }));
  const attributes = {
    text: { DataType: "String", StringValue: "värde" },
    number: { DataType: "Number", StringValue: "3.14" },
    bytes: { DataType: "Binary", BinaryValue: Uint8Array.from([0, 255, 7]) },
  };
  const bodies = ["plain", "ünïcödé ✓ 😀", "x".repeat(300000)];
  const sent = await client.send(new SendMessageCommand({
    QueueUrl, MessageBody: bodies[0], MessageAttributes: attributes,
  }));
  const batch = await client.send(new SendMessageBatchCommand({
    QueueUrl,
    Entries: bodies.slice(1).map((body, i) => ({ Id: `e${i}`, MessageBody: body, MessageAttributes: attributes })),
  }));
  const received = [];
  while (received.length < bodies.length) {
    const out = await client.send(new ReceiveMessageCommand({
      QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"],
    }));
    received.push(...(out.Messages || []));
  }
  await client.send(new DeleteMessageBatchCommand({
    QueueUrl, Entries: received.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
  }));
  console.log(JSON.stringify({
    sentAttributesMd5: sent.MD5OfMessageAttributes,
    batchSuccessful: batch.Successful.length,
    receivedBodies: received.map((m) => m.Body).sort(),
    receivedAttributesMd5: received.map((m) => m.MD5OfMessageAttributes),
  }));
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
