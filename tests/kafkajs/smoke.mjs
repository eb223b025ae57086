// kafkajs (pure JavaScript, its own protocol code) against a rafka node: admin calls, an
// idempotent gzip producer with keys and headers, a consumer group that reads everything once and
// commits, committed offsets equal to the log ends, a second member resuming from the commit,
// transactions (a committed and an aborted one, read back read_committed), DeleteTopics. Every
// check prints "ok <name>"; the first failure exits 1.
//
//   node smoke.mjs <host:port> [<SASL_PLAINTEXT host:port>]
//
// With the second address (a SASL_PLAINTEXT listener whose PLAIN user is admin/admin-secret) it
// also produces and consumes over SASL PLAIN and checks that a wrong password is refused.
import { Kafka, CompressionTypes, logLevel } from 'kafkajs';

const broker = process.argv[2];
if (!broker) throw new Error('usage: node smoke.mjs host:port');
const kafka = new Kafka({ clientId: 'rafka-smoke', brokers: [broker], logLevel: logLevel.WARN });
const TOPIC = 'js-orders';
const TXN_TOPIC = 'js-txn';
const GROUP = 'js-group';

function check(cond, name, detail) {
  if (!cond) {
    console.error(`FAIL ${name}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok ${name}`);
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// Reads with a fresh member of `groupId` until `want` messages came (or the deadline), then
// waits a little for any extra one (a message read twice) and leaves the group.
async function consume(groupId, topic, want, opts = {}, client = kafka) {
  // kafkajs heartbeats and leaves between fetches, so its default 5 s fetch wait would hold every
  // rebalance and every leave for 5 s on an idle topic (as against Kafka).
  const consumer = client.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 500, ...opts });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = [];
  let resolve;
  const enough = new Promise((r) => { resolve = r; });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      got.push({
        partition,
        offset: Number(message.offset),
        key: message.key && message.key.toString(),
        value: message.value.toString(),
        headers: Object.fromEntries(Object.entries(message.headers || {}).map(([k, v]) => [k, v.toString()])),
      });
      if (got.length >= want) resolve();
    },
  });
  if (want > 0) await withTimeout(enough, 60000, `${want} messages of ${topic} for ${groupId}`);
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return got;
}

const admin = kafka.admin();
await admin.connect();

// --- admin: CreateTopics, Metadata, ListTopics.
const created = await admin.createTopics({
  topics: [{ topic: TOPIC, numPartitions: 3 }, { topic: TXN_TOPIC, numPartitions: 1 }],
  waitForLeaders: true,
});
check(created === true, 'createTopics creates two topics');
const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
check(md.topics[0].partitions.length === 3 && md.topics[0].partitions.every((p) => p.leader === 1),
  'fetchTopicMetadata: three partitions led by node 1', md.topics[0].partitions);
const listed = await admin.listTopics();
check(listed.includes(TOPIC) && listed.includes(TXN_TOPIC), 'listTopics lists both', listed);

// --- an idempotent producer, gzip, keys and headers, 30 messages over 3 partitions.
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const sent = [];
for (let i = 0; i < 30; i++) {
  sent.push({ partition: i % 3, key: `k${i}`, value: `v${i}`, headers: { n: String(i), src: 'kafkajs' } });
}
const acks = await producer.send({ topic: TOPIC, acks: -1, compression: CompressionTypes.GZIP, messages: sent.slice(0, 15) });
check(acks.every((a) => a.errorCode === 0), 'an idempotent gzip batch is acknowledged', acks);
for (const m of sent.slice(15)) {
  await producer.send({ topic: TOPIC, acks: -1, messages: [m] });
}
check(true, 'fifteen single-message sends are acknowledged');
await producer.disconnect();

const ends = await admin.fetchTopicOffsets(TOPIC);
check(ends.map((p) => Number(p.high)).reduce((a, b) => a + b, 0) === 30 && ends.every((p) => Number(p.low) === 0),
  'fetchTopicOffsets: 30 messages, from offset 0', ends);

// --- a consumer group reads everything exactly once, with keys and headers.
const got = await consume(GROUP, TOPIC, 30);
const byKey = new Map(got.map((m) => [m.key, m]));
check(got.length === 30 && byKey.size === 30, 'the group reads 30 distinct messages once', got.length);
check(sent.every((m) => {
  const g = byKey.get(m.key);
  return g && g.value === m.value && g.partition === m.partition && g.headers.n === m.headers.n && g.headers.src === 'kafkajs';
}), 'every message arrives with its value, partition and headers');
for (let p = 0; p < 3; p++) {
  const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
  check(offsets.join(',') === [...Array(10).keys()].join(','), `partition ${p} is read in offset order 0..9`, offsets);
}

// --- the group's committed offsets are the log ends; the group is described.
const committed = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
const c = committed[0].partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0] - b[0]);
check(JSON.stringify(c) === JSON.stringify([[0, 10], [1, 10], [2, 10]]), 'committed offsets are the log ends', c);
const groups = await admin.describeGroups([GROUP]);
check(groups.groups[0].state === 'Empty' && groups.groups[0].protocolType === 'consumer',
  'describeGroups: Empty consumer group after the member left', groups.groups[0]);
const listedGroups = await admin.listGroups();
check(listedGroups.groups.some((g) => g.groupId === GROUP), 'listGroups lists it', listedGroups);

// --- a new member resumes from the commit and reads only what came after.
const p2 = kafka.producer();
await p2.connect();
await p2.send({ topic: TOPIC, messages: [{ partition: 1, key: 'late', value: 'after-commit' }] });
await p2.disconnect();
const resumed = await consume(GROUP, TOPIC, 1);
check(resumed.length === 1 && resumed[0].key === 'late' && resumed[0].offset === 10,
  'a new member resumes from the committed offsets', resumed);

// --- admin: DescribeCluster, DescribeConfigs and AlterConfigs, CreatePartitions, DeleteRecords,
// and an admin reset of the group's offsets.
const cluster = await admin.describeCluster();
check(cluster.brokers.length === 1 && cluster.brokers[0].nodeId === 1 && typeof cluster.clusterId === 'string' && cluster.clusterId.length > 0,
  'describeCluster: one broker and the cluster id', cluster);
const RESOURCE_TOPIC = 2; // kafkajs's ConfigResourceTypes.TOPIC
const retention = async () => {
  const d = await admin.describeConfigs({ resources: [{ type: RESOURCE_TOPIC, name: TOPIC, configNames: ['retention.ms'] }] });
  return d.resources[0].configEntries.find((e) => e.configName === 'retention.ms');
};
const before = await retention();
check(before && before.configValue === '604800000' && before.isDefault === true, 'describeConfigs: the default retention.ms', before);
await admin.alterConfigs({ resources: [{ type: RESOURCE_TOPIC, name: TOPIC, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] });
const altered = await retention();
check(altered && altered.configValue === '86400000' && altered.isDefault === false, 'alterConfigs sets retention.ms', altered);
await admin.createPartitions({ topicPartitions: [{ topic: TOPIC, count: 4 }] });
const md4 = await admin.fetchTopicMetadata({ topics: [TOPIC] });
check(md4.topics[0].partitions.length === 4, 'createPartitions: 3 to 4 partitions', md4.topics[0].partitions.length);
await admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 2, offset: '4' }] });
const lows = await admin.fetchTopicOffsets(TOPIC);
const p2lo = lows.find((p) => p.partition === 2);
check(Number(p2lo.low) === 4 && Number(p2lo.high) === 10, 'deleteTopicRecords moves partition 2 to start at offset 4', p2lo);
await admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: [{ partition: 0, offset: '7' }] });
const reset = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
const p0 = reset[0].partitions.find((p) => p.partition === 0);
check(Number(p0.offset) === 7, "setOffsets moves the group's partition 0 to offset 7", reset[0].partitions);
const replay = await consume(GROUP, TOPIC, 3);
check(JSON.stringify(replay.map((m) => [m.partition, m.offset]).sort()) === JSON.stringify([[0, 7], [0, 8], [0, 9]]),
  'the group replays partition 0 from offset 7, nothing else', replay.map((m) => [m.partition, m.offset]));

// --- transactions: one committed, one aborted; a read_committed consumer sees only the first.
const tx = kafka.producer({ transactionalId: 'js-tx', idempotent: true, maxInFlightRequests: 1 });
await tx.connect();
let t = await tx.transaction();
await t.send({ topic: TXN_TOPIC, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
await t.commit();
t = await tx.transaction();
await t.send({ topic: TXN_TOPIC, messages: [{ value: 'aborted' }] });
await t.abort();
t = await tx.transaction();
await t.send({ topic: TXN_TOPIC, messages: [{ value: 'committed-3' }] });
await t.commit();
await tx.disconnect();
check(true, 'transactions commit and abort');
const txRead = await consume('js-txn-reader', TXN_TOPIC, 3);
check(JSON.stringify(txRead.map((m) => m.value)) === JSON.stringify(['committed-1', 'committed-2', 'committed-3']),
  'a read_committed consumer reads only committed messages', txRead.map((m) => m.value));
const uncommitted = await consume('js-txn-uncommitted', TXN_TOPIC, 4, { readUncommitted: true });
check(JSON.stringify(uncommitted.map((m) => m.value)) === JSON.stringify(['committed-1', 'committed-2', 'aborted', 'committed-3']),
  'a read_uncommitted consumer also reads the aborted message', uncommitted.map((m) => m.value));

// --- two members of one group share a topic's partitions, and one takes all when the other leaves.
const SHARED = 'js-shared';
await admin.createTopics({ topics: [{ topic: SHARED, numPartitions: 4 }], waitForLeaders: true });
const members = [];
const assigned = [new Set(), new Set()];
for (let i = 0; i < 2; i++) {
  const m = kafka.consumer({ groupId: 'js-pair', sessionTimeout: 10000, heartbeatInterval: 300, rebalanceTimeout: 10000, maxWaitTimeInMs: 500 });
  m.on(m.events.GROUP_JOIN, (e) => {
    assigned[i] = new Set((e.payload.memberAssignment[SHARED] || []).map(Number));
  });
  await m.connect();
  await m.subscribe({ topic: SHARED, fromBeginning: true });
  await m.run({ eachMessage: async () => {} });
  members.push(m);
}
const split = async () => {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const [a, b] = assigned;
    if (a.size === 2 && b.size === 2 && [...a].every((p) => !b.has(p))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
};
check(await split(), 'two members split four partitions two and two', assigned.map((s) => [...s]));
await members[1].disconnect();
{
  const deadline = Date.now() + 60000;
  while (assigned[0].size !== 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
check(assigned[0].size === 4, 'the remaining member takes all four after the other leaves', [...assigned[0]]);
await members[0].disconnect();

// --- SASL PLAIN on the second listener: produce and consume, and a wrong password refused.
const saslBroker = process.argv[3];
if (saslBroker) {
  const sasl = new Kafka({
    clientId: 'rafka-smoke-sasl', brokers: [saslBroker], logLevel: logLevel.WARN,
    sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
  });
  const sp = sasl.producer();
  await sp.connect();
  await sp.send({ topic: 'js-sasl', acks: -1, messages: [{ value: 's0' }, { value: 's1' }, { value: 's2' }] });
  await sp.disconnect();
  const sread = await consume('js-sasl-group', 'js-sasl', 3, {}, sasl);
  check(JSON.stringify(sread.map((m) => m.value)) === JSON.stringify(['s0', 's1', 's2']),
    'SASL PLAIN: a producer and a group consumer over SASL_PLAINTEXT', sread.map((m) => m.value));
  const bad = new Kafka({
    clientId: 'rafka-smoke-bad', brokers: [saslBroker], logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    sasl: { mechanism: 'plain', username: 'admin', password: 'wrong' },
  });
  const badAdmin = bad.admin();
  let refused = null;
  try {
    await badAdmin.connect();
    await badAdmin.listTopics();
  } catch (e) {
    refused = e;
  }
  check(refused !== null && /SASL|auth/i.test(`${refused.name} ${refused.message}`),
    'SASL PLAIN: a wrong password is refused', refused && `${refused.name}: ${refused.message}`);
}

// --- DeleteTopics.
await admin.deleteTopics({ topics: [TXN_TOPIC] });
const after = await admin.listTopics();
check(!after.includes(TXN_TOPIC) && after.includes(TOPIC), 'deleteTopics deletes one topic', after);
await admin.disconnect();
console.log('kafkajs: all checks passed');
