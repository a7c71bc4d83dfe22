/**
 * The measuring tool: the loomvisor CLI, its scenarios, the JMH benchmarks, the HdrHistogram latency files
 * and the Chronicle Queue journal. Nothing depends on it; picocli and JMH reach its classes reflectively.
 */
module dev.loomvisor.bench {
    requires dev.loomvisor.core;
    requires dev.loomvisor.vmm;
    requires dev.loomvisor.vhost;
    requires org.agrona;
    requires info.picocli;
    requires HdrHistogram;
    requires chronicle.queue;
    requires chronicle.wire;
    requires chronicle.core;
    requires jmh.core;
    requires xchart;
    requires java.management;
    requires jdk.management;
    requires jdk.jfr;
    requires com.fasterxml.jackson.databind;

    opens dev.loomvisor.bench to info.picocli;
    opens dev.loomvisor.bench.cli to info.picocli;
}
