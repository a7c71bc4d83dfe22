package dev.loomvisor.bench;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the CLI in-process, as {@code loomvisor ARGS} would, and keeps its exit status and both streams. */
public record CliRun(int status, String out, String err) {

    public static CliRun of(String... args) {
        var out = new StringWriter();
        var err = new StringWriter();
        var cmd = Main.commandLine();
        cmd.setOut(new PrintWriter(out));
        cmd.setErr(new PrintWriter(err));
        int status = cmd.execute(args);
        return new CliRun(status, out.toString(), err.toString());
    }
}
