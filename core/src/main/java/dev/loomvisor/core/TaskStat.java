package dev.loomvisor.core;

/**
 * One row of a {@code ps -eLo pid,lwp,ppid,stat,flags,comm}-like listing, the fields of
 * /proc/&lt;pid&gt;/task/&lt;tid&gt;/stat that ps reads: a user worker is a thread of its owner (its tgid is
 * the owner's pid) with a comm of its own, never a process of its own; a kthread is its own process under
 * kthreadd, without an mm, which ps shows in brackets.
 *
 * @param pid the thread group (tgid)
 * @param tid the task (ps's LWP)
 * @param ppid the parent process
 * @param state R running, S sleeping, T stopped, X being released
 * @param flags the PF_* task flags
 * @param comm the task's own name
 * @param hasMm false for a kthread that borrows none: ps prints {@code [comm]} for a task with no cmdline
 */
public record TaskStat(int pid, int tid, int ppid, char state, int flags, String comm, boolean hasMm) {

    /** True for a task that is not its group's leader: a thread, not a process. */
    public boolean isThread() {
        return tid != pid;
    }

    public boolean hasFlag(int pf) {
        return (flags & pf) == pf;
    }

    /** The name as ps prints it in its CMD column when there is no command line: {@code [comm]}. */
    public String psName() {
        return hasMm ? comm : "[" + comm + "]";
    }

    static TaskStat of(Task t) {
        Process p = t.process();
        Process parent = p.parent();
        char state;
        if (t.isReleasing()) {
            state = 'X';
        } else if (t.isStopped()) {
            state = 'T';
        } else if (t.isStarted() && t.thread() != null && t.state() != Task.TASK_RUNNING) {
            state = 'S';
        } else {
            state = 'R';
        }
        return new TaskStat(p.pid(), t.tid(), parent == null ? 0 : parent.pid(), state, t.flags(), t.comm(),
                t.mm() != null);
    }
}
