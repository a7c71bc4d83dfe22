package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FileTableTest {

    @Test
    void installAlwaysTakesTheLowestFreeDescriptor() throws Exception {
        var table = new FileTable();
        BitSet open = new BitSet();
        List<Integer> fds = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(42);
        for (int op = 0; op < 20_000; op++) {
            if (fds.isEmpty() || r.nextInt(3) != 0) {
                int expected = open.nextClearBit(0);
                int fd = table.install(() -> { });
                assertEquals(expected, fd, "op " + op);
                open.set(fd);
                fds.add(fd);
            } else {
                int fd = fds.remove(r.nextInt(fds.size()));
                table.close(fd);
                open.clear(fd);
            }
            assertEquals(open.cardinality(), table.size());
        }
    }

    @Test
    void closingAFreeDescriptorIsEbadfAndLeavesTheTableAlone() throws Exception {
        var table = new FileTable();
        assertEquals(0, table.install(() -> { }));
        assertEquals(1, table.install(() -> { }));
        table.close(0);
        var e = assertThrows(ErrnoException.class, () -> table.close(0));
        assertEquals(Errno.EBADF, e.errno());
        assertEquals(0, table.install(() -> { }));
        assertEquals(2, table.install(() -> { }));
    }
}
