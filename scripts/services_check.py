"""Smoke check of the local services with real clients; run by `scripts/services.sh check`
with the `services.sh env` environment. Quiet on success; names the failing step otherwise.

  kafka    produce and consume one message (confluent-kafka / librdkafka)
  kinesis  create a stream, put a record, get it back (boto3)
  s3       create a bucket, put/get an object, and race conditional puts: over 50 keys,
           two concurrent PutObject(IfNoneMatch='*') must give exactly one 200 and one 412
"""

import os
import sys
import threading
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RUN = uuid.uuid4().hex[:10]
CFG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=20)


def fail(step, msg):
    print(f"check {step}: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def check_kafka():
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = os.environ["PINSTREAM_KAFKA"]
    topic = f"services-check-{RUN}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        fut.result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"k", value=b"hello " + RUN.encode())
    if producer.flush(10) != 0:
        fail("kafka", "produce not delivered within 10 s")
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"services-check-{RUN}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    try:
        # manual assignment: no group join, which takes seconds on tansu
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            if msg.value() != b"hello " + RUN.encode():
                fail("kafka", f"consumed {msg.value()!r}")
            return
        fail("kafka", "no message consumed within 20 s")
    finally:
        consumer.close()


def check_kinesis():
    kinesis = boto3.client("kinesis", config=CFG)  # AWS_ENDPOINT_URL_KINESIS
    stream = f"services-check-{RUN}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    put = kinesis.put_record(StreamName=stream, Data=b"hello", PartitionKey="k")
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=it)["Records"]
    if [r["Data"] for r in records] != [b"hello"]:
        fail("kinesis", f"got {records!r}")
    if records[0]["SequenceNumber"] != put["SequenceNumber"]:
        fail("kinesis", "sequence number differs between put and get")
    kinesis.delete_stream(StreamName=stream)


def check_s3():
    s3 = boto3.client("s3", config=CFG)  # AWS_ENDPOINT_URL
    bucket = f"services-check-{RUN}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    body = s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read()
    if body != b"hello":
        fail("s3", f"got {body!r}")

    # racing conditional writers: exactly one wins each key
    keys, results, lock = 50, [], threading.Lock()
    barrier = threading.Barrier(2)
    clients = [boto3.client("s3", config=CFG) for _ in range(2)]

    def writer(n):
        for i in range(keys):
            barrier.wait()
            try:
                clients[n].put_object(Bucket=bucket, Key=f"race/{i}", Body=f"{n}".encode(),
                                      IfNoneMatch="*")
                outcome = 200
            except ClientError as e:
                outcome = e.response["ResponseMetadata"]["HTTPStatusCode"]
            with lock:
                results.append((i, outcome))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    per_key = {}
    for i, outcome in results:
        per_key.setdefault(i, []).append(outcome)
    bad = {i: sorted(o) for i, o in per_key.items() if sorted(o) != [200, 412]}
    if len(per_key) != keys or bad:
        fail("s3", f"conditional put race: keys without exactly one 200 and one 412: {bad}")


def main():
    for name, step in (("kafka", check_kafka), ("kinesis", check_kinesis), ("s3", check_s3)):
        try:
            step()
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001 - report which step broke, with the error
            fail(name, f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
