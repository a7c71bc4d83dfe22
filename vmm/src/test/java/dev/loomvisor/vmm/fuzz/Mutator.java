package dev.loomvisor.vmm.fuzz;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Makes fuzz inputs from a corpus the way libFuzzer's default mutators do, minus the coverage feedback: a
 * quarter are fresh random bytes, the rest a seed with a few byte flips, random bytes, boundary values,
 * insertions, deletions or a splice with another seed.
 */
final class Mutator {

    private static final int[] INTERESTING = {0, 1, 0x7f, 0x80, 0xef, 0xf0, 0xfe, 0xff};

    private final SplittableRandom rnd;
    private final List<byte[]> corpus;

    Mutator(SplittableRandom rnd, List<byte[]> corpus) {
        this.rnd = rnd;
        this.corpus = corpus;
    }

    byte[] next() {
        if (rnd.nextInt(4) == 0) {
            byte[] b = new byte[16 + rnd.nextInt(rnd.nextBoolean() ? 256 : 4096)];
            rnd.nextBytes(b);
            return b;
        }
        byte[] b = corpus.get(rnd.nextInt(corpus.size())).clone();
        int mutations = 1 + rnd.nextInt(rnd.nextBoolean() ? 3 : 12);
        for (int m = 0; m < mutations; m++) {
            if (b.length == 0) {
                b = new byte[] {(byte) rnd.nextInt(256)};
            }
            int at = rnd.nextInt(b.length);
            switch (rnd.nextInt(7)) {
                case 0 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                case 1 -> b[at] = (byte) rnd.nextInt(256);
                case 2 -> b[at] = (byte) INTERESTING[rnd.nextInt(INTERESTING.length)];
                case 3 -> {
                    int k = 1 + rnd.nextInt(16);
                    byte[] c = Arrays.copyOf(b, b.length + k);
                    System.arraycopy(b, at, c, at + k, b.length - at);
                    for (int i = 0; i < k; i++) {
                        c[at + i] = (byte) rnd.nextInt(256);
                    }
                    b = c;
                }
                case 4 -> {
                    int k = Math.min(1 + rnd.nextInt(16), b.length - at);
                    byte[] c = new byte[b.length - k];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + k, c, at, b.length - at - k);
                    b = c;
                }
                case 5 -> {
                    byte[] other = corpus.get(rnd.nextInt(corpus.size()));
                    int from = rnd.nextInt(other.length);
                    int k = Math.min(other.length - from, b.length - at);
                    System.arraycopy(other, from, b, at, k);
                }
                default -> {
                    // a run of ops appended: deeper call sequences
                    int k = 1 + rnd.nextInt(32);
                    byte[] c = Arrays.copyOf(b, b.length + k);
                    for (int i = 0; i < k; i++) {
                        c[b.length + i] = (byte) rnd.nextInt(256);
                    }
                    b = c;
                }
            }
        }
        return b;
    }
}
