package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.virtio.SplitRing.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The seed corpus: the rings of vmm's ring unit tests (RingValidationTest, RingPropertyTest,
 * DriverQueueTest) written in the fuzz input format, well-formed ones and the hostile ones those tests
 * reject. {@link #main} writes them as files into the directory Jazzer reads in regression mode
 * ({@code src/test/resources/dev/loomvisor/vmm/fuzz/SplitRingFuzzTestInputs/splitRing}).
 */
final class Corpus {

    private Corpus() {
    }

    static List<byte[]> seeds() {
        List<byte[]> s = new ArrayList<>();
        // 1. Eight one-descriptor chains, all available, popped, used, published, interrupt decided.
        {
            InputBuilder b = new InputBuilder(3, false, false, false, 0, 8).restOfTable().restOfAvail().table(0).table(0);
            for (int i = 0; i < 8; i++) {
                b.popAndUse();
            }
            s.add(b.op(SplitRingTarget.OP_PUBLISH).op(SplitRingTarget.OP_NEEDS_INTERRUPT).op(SplitRingTarget.OP_ENABLE).bytes());
        }
        // 2. A chain of N (chainOfNAcceptedLoopVisitingNPlusOneRejected), then the same with a loop.
        for (boolean loop : new boolean[] {false, true}) {
            InputBuilder b = new InputBuilder(3, false, false, false, 0, 1);
            for (int i = 0; i < 8; i++) {
                b.desc(i, 1, i < 7 || loop ? DESC_F_NEXT : 0, loop && i == 7 ? 0 : i + 1);
            }
            s.add(b.restOfAvail().table(0).table(0).popAndUse().bytes());
        }
        // 3. Direct descriptors then one indirect (directDescriptorsThenOneIndirectWork).
        {
            InputBuilder b = new InputBuilder(3, true, true, false, 0, 1);
            b.desc(0, 10, DESC_F_NEXT, 1).desc(10, 20, DESC_F_NEXT, 2).indirectDesc(0, 2).restOfTable();
            b.restOfAvail().table(2).desc(30, 30, DESC_F_NEXT, 1).desc(100, 40, DESC_F_WRITE, 0).table(0);
            s.add(b.popAndUse().op(SplitRingTarget.OP_NEEDS_INTERRUPT).bytes());
        }
        // 4. Nested indirect (nestedIndirectRejected) and an indirect loop (loopInsideIndirectTableRejected).
        {
            InputBuilder b = new InputBuilder(3, false, true, false, 0, 2);
            b.indirectDesc(0, 1).indirectDesc(1, 2).restOfTable().restOfAvail();
            b.table(1).indirectDesc(1, 1).table(2).desc(0, 1, DESC_F_NEXT, 1).desc(0, 1, DESC_F_NEXT, 0);
            s.add(b.popAndUse().popAndUse().bytes());
        }
        // 5. Indexes wrapping from 65535 to 0 (indexesWrapFrom65535To0).
        {
            InputBuilder b = new InputBuilder(3, false, true, false, 65533, 5).restOfTable().restOfAvail().table(0).table(0);
            for (int i = 0; i < 5; i++) {
                b.popAndUse();
            }
            s.add(b.op(SplitRingTarget.OP_HAS_AVAIL).op(SplitRingTarget.OP_ENABLE).bytes());
        }
        // 6. A TX batch with EVENT_IDX (vhost's handle_tx shape): disable, pop and hold, use all, re-enable.
        {
            InputBuilder b = new InputBuilder(6, true, true, true, 100, 64).restOfTable().restOfAvail().table(0).table(0);
            b.op(SplitRingTarget.OP_DISABLE);
            for (int i = 0; i < 64; i++) {
                b.popAndHold();
            }
            s.add(b.op(SplitRingTarget.OP_USE_ALL).op(SplitRingTarget.OP_NEEDS_INTERRUPT).op(SplitRingTarget.OP_ENABLE)
                    .op(SplitRingTarget.OP_GUEST).u8(0).u8(3).popAndUse().bytes());
        }
        // 7. RX: writable chains, a pop given back (discard) and popped again, as MRG_RXBUF does.
        {
            InputBuilder b = new InputBuilder(4, false, false, false, 7, 16);
            for (int i = 0; i < 16; i++) {
                b.desc(i * 128, 128, DESC_F_WRITE, 0);
            }
            b.restOfAvail().table(0).table(0);
            b.popAndHold().popAndHold().op(SplitRingTarget.OP_DISCARD).op(SplitRingTarget.OP_DISCARD).popAndUse().popAndUse();
            s.add(b.op(SplitRingTarget.OP_PUBLISH).bytes());
        }
        // 8. Readable after writable, head out of range, avail.idx N + 1 ahead (RingValidationTest).
        {
            InputBuilder b = new InputBuilder(3, false, false, false, 0, 1);
            b.desc(0, 10, DESC_F_NEXT | DESC_F_WRITE, 1).desc(0, 10, 0, 0).restOfTable();
            s.add(b.restOfAvail().table(0).table(0).popAndUse().bytes());
            s.add(new InputBuilder(3, false, false, false, 0, 1).restOfTable().availRaw(8).restOfAvail()
                    .table(0).table(0).popAndUse().bytes());
            s.add(new InputBuilder(3, false, false, false, 0, 1).restOfTable().restOfAvail().table(0).table(0)
                    .popAndUse().op(SplitRingTarget.OP_GUEST).u8(1).u16(1 + 9).popAndUse().bytes());
        }
        // 9. The largest queue the layout holds, half its chains popped.
        {
            InputBuilder b = new InputBuilder(7, true, false, false, 0, 128).restOfTable().restOfAvail().table(0).table(0);
            for (int i = 0; i < 128; i++) {
                b.popAndUse();
            }
            s.add(b.op(SplitRingTarget.OP_NEEDS_INTERRUPT).bytes());
        }
        // 10. Chains totalling 2^32 - 2 + 64 (accepted) and 3 * (2^31 - 1) (chainTotallingBelow2To32...).
        {
            InputBuilder b = new InputBuilder(3, false, false, false, 0, 2);
            b.bigDesc(1, DESC_F_NEXT, 1).bigDesc(1, DESC_F_NEXT, 2).desc(0, 64, 0, 0);
            b.bigDesc(1, DESC_F_NEXT, 4).bigDesc(1, DESC_F_NEXT, 5).bigDesc(1, 0, 0).restOfTable();
            s.add(b.avail(0).avail(3).restOfAvail().table(0).table(0).popAndUse().popAndUse().bytes());
        }
        return s;
    }

    /** Writes the seeds as corpus files: {@code Corpus <dir>}. */
    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args[0]);
        Files.createDirectories(dir);
        List<byte[]> s = seeds();
        for (int i = 0; i < s.size(); i++) {
            Files.write(dir.resolve(String.format("seed-%02d", i)), s.get(i));
        }
    }
}
