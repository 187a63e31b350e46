// File-system errors in the tool's words, naming the path: Node's own messages ("ENOSPC: no space left on device,
// write", "EISDIR: illegal operation on a directory") name no file, or name it in passing.

const REASONS: Record<string, string> = {
  ENOENT: "no such file or folder",
  ENOTDIR: "a folder on its path is a file",
  EISDIR: "it is a folder, not a file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EROFS: "the file system is read-only",
  EMFILE: "too many open files",
  ENAMETOOLONG: "the name is too long",
  EEXIST: "a file of that name is in the way",
  ELOOP: "a loop of symbolic links",
};

const VERBS: Record<string, string> = { open: "open", read: "read", write: "write", rename: "write", mkdir: "create the folder", scandir: "list", stat: "read", unlink: "remove" };

export interface FileError {
  code: string;
  syscall?: string;
  path?: string;
}

export function isFileError(e: unknown): e is Error & FileError {
  return e instanceof Error && typeof (e as Partial<FileError>).code === "string" && (e as Partial<FileError>).code! in REASONS;
}

// "cannot write runs/x/table.md: the disk is full (ENOSPC)": `path` where the error itself names none (or names a
// temporary file), `action` where its system call says too little.
export function describeFileError(e: Error & FileError, path = e.path, action?: string): string {
  const verb = action ?? VERBS[e.syscall ?? ""] ?? "use";
  return `cannot ${verb} ${path ?? "a file"}: ${REASONS[e.code]} (${e.code})`;
}
