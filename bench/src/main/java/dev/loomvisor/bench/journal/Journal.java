package dev.loomvisor.bench.journal;

import dev.loomvisor.bench.output.Json;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import net.openhft.chronicle.queue.ChronicleQueue;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import org.HdrHistogram.Histogram;

/**
 * The run journal: every run appends its config, interval histograms, per-model results and an end
 * record to a Chronicle Queue, and {@code report} reads them back.
 *
 * <p>Each record is one Chronicle document with three fields: {@code type}, {@code run} (the run id) and
 * {@code json}. A run is complete only once its {@code end} record is in the queue: Chronicle makes a
 * document visible to readers only when its header is marked complete, so a run killed with SIGKILL
 * midway leaves its earlier documents (and every earlier run) readable, and shows up here as a run
 * without an end, that is incomplete.
 */
public final class Journal implements AutoCloseable {

    /** Record types, in the order a run writes them. */
    public static final String START = "start";
    public static final String INTERVAL = "interval";
    public static final String RESULT = "result";
    public static final String END = "end";

    private static final DateTimeFormatter RUN_ID_TIME =
            DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);

    /**
     * How long a writer waits for the queue's write lock, or for a half-written document at the end of the
     * queue, before it recovers them (if their writer is dead). Chronicle's default, 10 s (15 s for the lock),
     * stalled every writer of a journal that long after another was killed mid-append; an append holds the
     * lock for microseconds, so a live holder never comes near this.
     */
    static final long LOCK_TIMEOUT_MS = 1_000;

    private final ChronicleQueue queue;
    private final ExcerptAppender appender;

    private Journal(Path dir) {
        this.queue = ChronicleQueue.singleBuilder(dir).timeoutMS(LOCK_TIMEOUT_MS).build();
        this.appender = queue.createAppender();
    }

    public static Journal open(Path dir) {
        return new Journal(dir);
    }

    /** Appends a run's start record and returns its new id. */
    public String startRun(String command, Map<String, Object> config, Map<String, Object> machine) {
        String run = newRunId();
        var body = new LinkedHashMap<String, Object>();
        body.put("started", Instant.now().toString());
        body.put("command", command);
        body.put("config", config);
        body.put("machine", machine);
        append(START, run, body);
        return run;
    }

    /**
     * A new run id: the start time to the second, then 48 random bits. {@link #runs()} groups records by id,
     * so ids must not collide even when many runs start in one second (a scripted loop, parallel benchmarks
     * into one journal): 16 bits collided after a few hundred; 48 make a collision among a million runs
     * started in the same second about as likely as 1 in 500. {@code report} takes unique prefixes.
     */
    static String newRunId() {
        return RUN_ID_TIME.format(Instant.now()) + "-"
                + String.format("%012x", ThreadLocalRandom.current().nextLong(1L << 48));
    }

    /** Appends one interval histogram of a model, encoded as HdrHistogram's compressed form in base64. */
    public void interval(String run, String model, Histogram interval) {
        ByteBuffer buf = ByteBuffer.allocate(interval.getNeededByteBufferCapacity());
        int len = interval.encodeIntoCompressedByteBuffer(buf);
        var body = new LinkedHashMap<String, Object>();
        body.put("model", model);
        body.put("startMs", interval.getStartTimeStamp());
        body.put("endMs", interval.getEndTimeStamp());
        body.put("histogram", Base64.getEncoder().encodeToString(java.util.Arrays.copyOf(buf.array(), len)));
        append(INTERVAL, run, body);
    }

    /** Appends one model's result (the same map the CLI prints as JSON). */
    public void result(String run, Map<String, Object> result) {
        append(RESULT, run, result);
    }

    /** Marks the run complete; nothing is appended for it afterwards. */
    public void endRun(String run, Map<String, Object> summary) {
        var body = new LinkedHashMap<String, Object>(summary);
        body.put("ended", Instant.now().toString());
        append(END, run, body);
    }

    private void append(String type, String run, Map<String, Object> body) {
        String json = Json.write(body);
        appender.writeDocument(w -> w.write("type").text(type).write("run").text(run).write("json").text(json));
    }

    /** Every run in the journal, oldest first, complete or not. */
    public List<RunRecord> runs() {
        var byId = new LinkedHashMap<String, RunRecord.Builder>();
        ExcerptTailer tailer = queue.createTailer();
        String[] fields = new String[3];
        while (tailer.readDocument(r -> {
            fields[0] = r.read("type").text();
            fields[1] = r.read("run").text();
            fields[2] = r.read("json").text();
        })) {
            if (fields[0] == null || fields[1] == null || fields[2] == null) {
                continue;
            }
            @SuppressWarnings("unchecked")
            var body = (Map<String, Object>) Json.parse(fields[2]);
            var b = byId.computeIfAbsent(fields[1], RunRecord.Builder::new);
            switch (fields[0]) {
                case START -> b.start = body;
                case INTERVAL -> b.intervals.add(body);
                case RESULT -> b.results.add(body);
                case END -> b.end = body;
                default -> { } // a newer writer's record type: skip it, keep reading
            }
        }
        var out = new ArrayList<RunRecord>(byId.size());
        for (var b : byId.values()) {
            if (b.start != null) {
                out.add(b.build());
            }
        }
        return out;
    }

    /** Decodes an interval record's histogram. */
    public static Histogram decode(Map<String, Object> interval) {
        byte[] bytes = Base64.getDecoder().decode((String) interval.get("histogram"));
        try {
            Histogram h = Histogram.decodeFromCompressedByteBuffer(ByteBuffer.wrap(bytes), 0);
            // The compressed form carries counts only; the interval's bounds travel beside it.
            h.setStartTimeStamp(((Number) interval.get("startMs")).longValue());
            h.setEndTimeStamp(((Number) interval.get("endMs")).longValue());
            return h;
        } catch (java.util.zip.DataFormatException e) {
            throw new IllegalStateException("journal: corrupt histogram in an interval record", e);
        }
    }

    @Override
    public void close() {
        appender.close();
        queue.close();
    }
}
