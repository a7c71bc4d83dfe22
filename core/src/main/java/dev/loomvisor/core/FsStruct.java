package dev.loomvisor.core;

/** A task's filesystem context (struct fs_struct: root, cwd, umask): shared with CLONE_FS, copied otherwise. */
public final class FsStruct {

    private volatile String cwd;

    public FsStruct(String cwd) {
        this.cwd = cwd;
    }

    public String cwd() {
        return cwd;
    }

    public void chdir(String dir) {
        this.cwd = dir;
    }

    FsStruct copy() {
        return new FsStruct(cwd);
    }
}
