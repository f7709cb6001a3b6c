// Reads a topic with Apache Kafka's own Java client and nothing but an issued client properties file (the CA
// inline as ssl.truststore.certificates):
//   java -cp '<kafka libs>/*' ReadTopic.java <file> <topic> <from offset> <count>
// Prints one line per record: the offset and the first byte of the value (0 for the Confluent wire format).
import java.io.FileInputStream;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class ReadTopic {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        props.remove("schema.registry.url"); // for Confluent's deserializers; the plain client has no use for it
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        int wanted = Integer.parseInt(args[3]);
        int seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            TopicPartition partition = new TopicPartition(args[1], 0); // other tests share the topic: from here on
            consumer.assign(List.of(partition));
            consumer.seek(partition, Long.parseLong(args[2]));
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen < wanted && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofSeconds(1))) {
                    System.out.println(record.offset() + " " + (record.value().length > 0 ? record.value()[0] : -1));
                    seen++;
                }
            }
        }
        System.exit(seen >= wanted ? 0 : 1);
    }
}
