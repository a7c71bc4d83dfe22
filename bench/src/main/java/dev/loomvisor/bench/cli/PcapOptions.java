package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.jfr.FlightRecording;
import dev.loomvisor.vhost.backend.PcapWriter;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** {@code --pcap FILE} and {@code --pcap-snaplen BYTES}: where a command captures frames, and how much of each. */
public class PcapOptions {

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    @Option(names = "--pcap", paramLabel = "FILE",
            description = "Capture every frame, both directions, to this pcap file (nanosecond timestamps, Ethernet); "
                    + "open it in Wireshark or with tshark -r.")
    Path file;

    @Option(names = "--pcap-snaplen", paramLabel = "BYTES", defaultValue = "" + PcapWriter.MAX_SNAPLEN,
            description = "Bytes kept of each captured frame, 1 to " + PcapWriter.MAX_SNAPLEN + " (default: ${DEFAULT-VALUE}).")
    int snaplen;

    /** The capture file, or null when no capture was asked for. */
    public Path file() {
        return file;
    }

    /** Checks the values; a wrong one gets a one-line ParameterException. */
    public void validate() {
        if (snaplen < 1 || snaplen > PcapWriter.MAX_SNAPLEN) {
            throw new CommandLine.ParameterException(mixee.commandLine(),
                    "--pcap-snaplen: " + snaplen + " is not allowed; give 1 to " + PcapWriter.MAX_SNAPLEN + " bytes");
        }
        if (file != null) {
            String problem = FlightRecording.problem(file);
            if (problem != null) {
                throw new CommandLine.ParameterException(mixee.commandLine(), "--pcap: " + problem);
            }
        }
    }

    /** Opens the capture file, or returns null when none was asked for. */
    public PcapWriter open() throws IOException {
        validate();
        return file == null ? null : PcapWriter.open(file, snaplen);
    }

    /** The options of the measuring commands: their capture is the in-process switch's (all VMs' ports). */
    public static final class Switch extends PcapOptions {
    }
}
