package dev.loomvisor.core.testing;

import dev.loomvisor.core.Task;

/**
 * What a failed bounded wait on a task says about it: life cycle, sleep state, signals, and its Java thread's
 * state and stack ({@link Thread#getStackTrace()} works on virtual threads too, mounted or not), so that a
 * "not dead after 10 s" says where the task is stuck. For failure messages only: a stack walk is slow.
 */
public final class TaskDump {

    private TaskDump() {
    }

    /** One line for the task, then its thread's stack, one frame a line. */
    public static String describe(Task t) {
        StringBuilder sb = new StringBuilder();
        sb.append(t).append(" started=").append(t.isStarted()).append(" dead=").append(t.isDead())
                .append(" sched=").append(switch (t.state()) {
                    case Task.TASK_RUNNING -> "RUNNING";
                    case Task.TASK_INTERRUPTIBLE -> "INTERRUPTIBLE";
                    case Task.TASK_PARKED -> "PARKED";
                    default -> String.valueOf(t.state());
                })
                .append(" sigkill-pending=").append(t.fatalSignalPending()).append(" group-stopped=")
                .append(t.isStopped()).append(" in-process-table=").append(t.process().task(t.tid()) == t);
        Thread th = t.thread();
        if (th == null) {
            return sb.append("; no Java thread").toString();
        }
        sb.append("; ");
        appendThread(sb, th);
        return sb.toString();
    }

    /** The thread's name, carrier, state and stack. */
    public static String thread(Thread th) {
        StringBuilder sb = new StringBuilder();
        appendThread(sb, th);
        return sb.toString();
    }

    private static void appendThread(StringBuilder sb, Thread th) {
        sb.append("thread ").append(th).append(" state=").append(th.getState());
        for (StackTraceElement e : th.getStackTrace()) {
            sb.append("\n      at ").append(e);
        }
    }
}
