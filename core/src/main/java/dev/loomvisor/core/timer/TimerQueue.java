package dev.loomvisor.core.timer;

import java.util.Arrays;

/**
 * The kernel's timerqueue: armed timers ordered by expiry, the earliest at hand. A binary min-heap in an
 * array; each timer keeps its own index so that re-arming or cancelling one moves it in O(log n) without a
 * search. Confined to one thread (the clock thread; public for the benchmark that weighs it against a
 * timing wheel). Grows by doubling; allocation-free once grown.
 */
public final class TimerQueue {

    private Hrtimer[] heap;
    private int size;

    public TimerQueue(int initialCapacity) {
        heap = new Hrtimer[Math.max(16, initialCapacity)];
    }

    public int size() {
        return size;
    }

    /** The timer that expires first, or null. */
    public Hrtimer first() {
        return size == 0 ? null : heap[0];
    }

    /** The first timer's expiry; only while {@link #size()} is not 0. */
    public long firstExpires() {
        return heap[0].queuedExpires;
    }

    /** timerqueue_add, or a move if {@code t} is queued already: {@code t} expires at {@code expires}. */
    public void add(Hrtimer t, long expires) {
        int i = t.queueIndex;
        if (i >= 0) {
            long old = t.queuedExpires;
            t.queuedExpires = expires;
            if (expires - old < 0) {
                siftUp(i);
            } else {
                siftDown(i);
            }
            return;
        }
        if (size == heap.length) {
            heap = Arrays.copyOf(heap, size * 2);
        }
        t.queuedExpires = expires;
        heap[size] = t;
        t.queueIndex = size;
        siftUp(size++);
    }

    /** timerqueue_del: no-op if {@code t} is not queued. */
    public void remove(Hrtimer t) {
        int i = t.queueIndex;
        if (i < 0) {
            return;
        }
        t.queueIndex = -1;
        Hrtimer last = heap[--size];
        heap[size] = null;
        if (i == size) {
            return;
        }
        heap[i] = last;
        last.queueIndex = i;
        siftDown(i);
        siftUp(last.queueIndex);
    }

    /**
     * The latest expiry among the queued timers that expire no later than {@code limit}, or {@code limit} itself
     * if none does (the queue must not be empty for a useful answer). Visits only those timers: a heap node
     * past the limit has its whole subtree past it.
     */
    public long latestUpTo(long limit) {
        return size == 0 ? limit : latestUpTo(0, limit, heap[0].queuedExpires);
    }

    private long latestUpTo(int i, long limit, long best) {
        if (i >= size) {
            return best;
        }
        long e = heap[i].queuedExpires;
        if (e - limit > 0) {
            return best;
        }
        if (e - best > 0) {
            best = e;
        }
        return latestUpTo(2 * i + 2, limit, latestUpTo(2 * i + 1, limit, best));
    }

    /** Removes and returns the first timer. */
    public Hrtimer poll() {
        Hrtimer t = heap[0];
        remove(t);
        return t;
    }

    // Deadlines are System.nanoTime values: compared by difference, as time_before() does, never by '<'.
    private void siftUp(int i) {
        Hrtimer t = heap[i];
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            Hrtimer p = heap[parent];
            if (t.queuedExpires - p.queuedExpires >= 0) {
                break;
            }
            heap[i] = p;
            p.queueIndex = i;
            i = parent;
        }
        heap[i] = t;
        t.queueIndex = i;
    }

    private void siftDown(int i) {
        Hrtimer t = heap[i];
        int half = size >>> 1;
        while (i < half) {
            int child = 2 * i + 1;
            Hrtimer c = heap[child];
            int right = child + 1;
            if (right < size && heap[right].queuedExpires - c.queuedExpires < 0) {
                child = right;
                c = heap[child];
            }
            if (t.queuedExpires - c.queuedExpires <= 0) {
                break;
            }
            heap[i] = c;
            c.queueIndex = i;
            i = child;
        }
        heap[i] = t;
        t.queueIndex = i;
    }
}
