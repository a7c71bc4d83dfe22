package dev.loomvisor.bench.jfr;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;

/**
 * {@code --jfr FILE}: a JDK Flight Recorder recording of the whole command, the JDK's own events (the
 * "default" settings, about 1% overhead) next to Loomvisor's (category "Loomvisor"), written to FILE when the
 * command ends, also when SIGINT or SIGTERM ends it (dump on exit). Open it in JDK Mission Control or with
 * {@code jfr print --categories Loomvisor FILE}.
 */
public final class FlightRecording implements AutoCloseable {

    private final Recording recording;
    private final Path file;

    private FlightRecording(Recording recording, Path file) {
        this.recording = recording;
        this.file = file;
    }

    /** What is wrong with {@code file} as a recording's destination, or null if it will do. */
    public static String problem(Path file) {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        if (Files.isDirectory(abs)) {
            return abs + " is a directory; give a file name, e.g. run.jfr";
        }
        if (dir == null || !Files.isDirectory(dir)) {
            return "directory " + dir + " does not exist";
        }
        if (!Files.isWritable(dir)) {
            return "directory " + dir + " is not writable";
        }
        return null;
    }

    /** Starts recording into {@code file} (written when closed). */
    public static FlightRecording start(Path file) throws IOException {
        Configuration c;
        try {
            c = Configuration.getConfiguration("default");
        } catch (ParseException e) {
            throw new IOException("JFR default settings: " + e.getMessage(), e);
        }
        var r = new Recording(c);
        r.setName("loomvisor");
        r.enable("dev.loomvisor.WorkerCreated");
        r.enable("dev.loomvisor.WorkerExited");
        r.enable("dev.loomvisor.RingError");
        r.enable("dev.loomvisor.DeviceOwner");
        r.enable("dev.loomvisor.SessionOpened");
        r.enable("dev.loomvisor.SessionClosed");
        r.enable("dev.loomvisor.SwitchDrops").withPeriod(java.time.Duration.ofSeconds(1));
        r.setToDisk(true);
        r.setDestination(file.toAbsolutePath());
        r.setDumpOnExit(true);
        r.start();
        return new FlightRecording(r, file);
    }

    public Path file() {
        return file;
    }

    /** Stops the recording, which writes it to the file. */
    @Override
    public void close() {
        try {
            recording.stop();
        } catch (IllegalStateException alreadyStopped) {
            // JFR's own shutdown hook stopped and wrote it (SIGINT/SIGTERM).
        }
        recording.close();
    }
}
