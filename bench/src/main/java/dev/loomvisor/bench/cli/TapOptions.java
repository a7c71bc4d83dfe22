package dev.loomvisor.bench.cli;

import dev.loomvisor.vhost.backend.TapBackend;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.Tun;
import java.io.IOException;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** {@code --tap NAME} of {@code vhost-user --mode tap}: the host TAP interface the frontend is plugged into. */
public final class TapOptions {

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    @Option(names = "--tap", paramLabel = "NAME",
            description = "Mode tap: the host TAP interface to plug the frontend into (created if missing, which "
                    + "needs CAP_NET_ADMIN; an existing one made with 'ip tuntap add NAME mode tap user USER' does not).")
    String name;

    /** Checks {@code --tap} against the mode; one line and exit 2 when wrong. */
    void validate(boolean tapMode, int queues) {
        var cmd = mixee.commandLine();
        if (!tapMode) {
            if (name != null) {
                throw new CommandLine.ParameterException(cmd, "--tap: only with --mode tap");
            }
            return;
        }
        if (name == null || name.isEmpty() || name.length() > 15 || !name.matches("[A-Za-z0-9_.-]+")) {
            throw new CommandLine.ParameterException(cmd,
                    "--tap: give an interface name of 1 to 15 letters, digits, '_', '.' or '-' (e.g. --tap lv0)");
        }
        if (queues != 1) {
            throw new CommandLine.ParameterException(cmd, "--queues: mode tap serves 1 queue pair");
        }
    }

    /** Opens the TAP; a failure is an IOException whose message is the one line to print. */
    TapBackend open() throws IOException {
        try {
            return TapBackend.open(name);
        } catch (NativeException e) {
            if (e.errno() == Tun.EPERM) {
                throw new IOException("--tap " + name + ": creating a TAP interface needs CAP_NET_ADMIN (EPERM); run as "
                        + "root, or create it first with 'ip tuntap add " + name + " mode tap user " + System.getProperty("user.name")
                        + "'", e);
            }
            throw new IOException("--tap " + name + ": cannot open the TAP interface through /dev/net/tun: " + e.getMessage(), e);
        }
    }
}
