package dev.loomvisor.bench.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import picocli.CommandLine;

/** The version Maven wrote into the jar at build time, and the JVM that runs it. */
public final class VersionProvider implements CommandLine.IVersionProvider {

    static String version() {
        try (InputStream in = VersionProvider.class.getResourceAsStream("/loomvisor-version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static String versionLine() {
        return "loomvisor " + version() + " (Java " + Runtime.version() + ", "
                + System.getProperty("java.vm.name") + "; GC: " + dev.loomvisor.bench.machine.MachineState.gcName() + ")";
    }

    @Override
    public String[] getVersion() {
        return new String[] {versionLine()};
    }
}
