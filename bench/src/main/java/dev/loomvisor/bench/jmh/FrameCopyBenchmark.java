package dev.loomvisor.bench.jmh;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One frame's copy between two off-heap buffers, the way the data path moves a frame from one guest's
 * memory to another's: FFM {@code MemorySegment.copy} against Agrona's {@code UnsafeBuffer.putBytes}.
 * The two ceilings the data-path ratios are read against; both must allocate nothing ({@code -prof gc}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FrameCopyBenchmark {

    @Param({"64", "1500"})
    int frameSize;

    private Arena arena;
    private MemorySegment from;
    private MemorySegment to;
    private UnsafeBuffer fromBuffer;
    private UnsafeBuffer toBuffer;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        from = arena.allocate(65536, 64);
        to = arena.allocate(65536, 64);
        for (long i = 0; i < from.byteSize(); i++) {
            from.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) i);
        }
        fromBuffer = new UnsafeBuffer(from.address(), (int) from.byteSize());
        toBuffer = new UnsafeBuffer(to.address(), (int) to.byteSize());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public MemorySegment memorySegmentCopy() {
        MemorySegment.copy(from, 12, to, 12, frameSize);
        return to;
    }

    @Benchmark
    public UnsafeBuffer unsafeBufferPutBytes() {
        toBuffer.putBytes(12, fromBuffer, 12, frameSize);
        return toBuffer;
    }
}
