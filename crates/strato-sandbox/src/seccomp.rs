//! The seccomp filter applied to every sandboxed process.
//!
//! A deny list, not an allow list: language runtimes use a wide and changing set of system calls, so the
//! filter allows everything except calls that reconfigure the machine, the kernel, namespaces, mounts or
//! other processes. Those fail with EPERM, which programs handle more gracefully than being killed.
//!
//! `clone3` is the exception: it fails with ENOSYS, as on a kernel that predates it. Its flags are in a
//! struct in memory, which a filter cannot read, so allowing it would let a process create namespaces
//! (a user namespace needs no privilege where the host permits unprivileged ones); refusing it with
//! EPERM would break thread creation, but on ENOSYS glibc and other runtimes fall back to `clone`,
//! whose flags are an argument the filter checks.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::error::{Result, SandboxError};

#[cfg(target_arch = "x86_64")]
const TARGET_ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET_ARCH: TargetArch = TargetArch::aarch64;

/// System calls refused on every architecture.
const DENIED_COMMON: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_vhangup,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_lookup_dcookie,
];

/// System calls that exist only on x86_64.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_uselib,
    libc::SYS_nfsservctl,
    libc::SYS_ustat,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
];
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[libc::c_long] = &[];

/// Compiles the filter. Done before `fork` so that the child only has to install it.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn build_filter() -> Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED_COMMON
        .iter()
        .chain(DENIED_ARCH)
        .map(|&nr| (nr, Vec::new()))
        .collect();
    // clone(2) may still create threads and processes, but not new namespaces (a user namespace would
    // hand the process a fresh set of capabilities over it). clone3(2) is answered before these rules,
    // see `with_early_checks`.
    let namespace_clones = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ]
    .into_iter()
    .map(|flag| {
        // Rules of one system call are alternatives: any one namespace flag set denies the clone.
        let flag = clone_flags_arg(flag);
        SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .and_then(|condition| SeccompRule::new(vec![condition]))
        .map_err(seccomp_error)
    })
    .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, namespace_clones);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TARGET_ARCH,
    )
    .map_err(seccomp_error)?;
    let program: BpfProgram = filter.try_into().map_err(seccomp_error)?;
    Ok(with_early_checks(program))
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn build_filter() -> Result<BpfProgram> {
    Err(SandboxError::Seccomp(
        "no seccomp filter for this architecture".to_string(),
    ))
}

/// Installs a compiled filter on the calling thread; requires `no_new_privs` to be set.
pub(crate) fn apply_filter(program: &BpfProgram) -> Result<()> {
    seccompiler::apply_filter(program).map_err(seccomp_error)
}

fn seccomp_error(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Seccomp(e.to_string())
}

/// Instructions spliced in right after seccompiler's architecture check, which ends by jumping to the
/// instruction after it (no jump of seccompiler's crosses that point). They answer `clone3` with
/// ENOSYS (seccompiler has one action for every matched rule) and, on x86_64, refuse x32 calls.
fn with_early_checks(mut program: BpfProgram) -> BpfProgram {
    const ARCH_CHECK_LEN: usize = 3;
    let mut checks = vec![sock_filter {
        code: bpf_opcode(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS),
        jt: 0,
        jf: 0,
        k: 0, // offsetof(struct seccomp_data, nr)
    }];
    checks.extend(foreign_abi_check());
    checks.extend(deny_when_nr(
        libc::BPF_JEQ,
        seccomp_nr(libc::SYS_clone3),
        libc::ENOSYS,
    ));
    let insert_at = ARCH_CHECK_LEN.min(program.len());
    program.splice(insert_at..insert_at, checks);
    program
}

/// Two instructions: with the system call number loaded, return `errno` when the number compares
/// (`comparison`, a `BPF_JEQ`-like jump code) to `value`, else go on.
fn deny_when_nr(comparison: u32, value: u32, errno: i32) -> [sock_filter; 2] {
    [
        sock_filter {
            code: bpf_opcode(libc::BPF_JMP | comparison | libc::BPF_K),
            jt: 0,
            jf: 1,
            k: value,
        },
        sock_filter {
            code: bpf_opcode(libc::BPF_RET | libc::BPF_K),
            jt: 0,
            jf: 0,
            // The errno travels in the low 16 bits of the return value, as its bit pattern.
            k: libc::SECCOMP_RET_ERRNO | errno.cast_unsigned(),
        },
    ]
}

/// `clone`'s flags argument as the filter sees it: libc spells the flags as a C `int`, the kernel
/// takes them as an unsigned long; every flag is a bit pattern, kept as is and zero-extended.
fn clone_flags_arg(flags: libc::c_int) -> u64 {
    u64::from(flags.cast_unsigned())
}

/// A system call number as `struct seccomp_data` holds it (`nr`, a 32-bit int) and a BPF `k`
/// compares it.
// Lossless because system call numbers are small non-negative ints (below 1024 on every Linux
// architecture); libc spells them as `c_long` only because syscall(2) takes a long.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const fn seccomp_nr(nr: libc::c_long) -> u32 {
    nr as u32
}

/// A classic BPF opcode as `sock_filter::code` holds it.
// Lossless because an opcode is 16 bits: libc spells its class, size, mode, operation and source
// parts as `u32`, but all of them lie in the low byte.
#[allow(clippy::cast_possible_truncation)]
const fn bpf_opcode(code: u32) -> u16 {
    code as u16
}

/// x32 system calls share the x86_64 audit arch but carry bit 30 in their number, so a deny list keyed
/// on x86_64 numbers would not see them: refuse them all.
#[cfg(target_arch = "x86_64")]
fn foreign_abi_check() -> Vec<sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    deny_when_nr(libc::BPF_JGE, X32_SYSCALL_BIT, libc::EPERM).to_vec()
}

#[cfg(not(target_arch = "x86_64"))]
fn foreign_abi_check() -> Vec<sock_filter> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    /// What the kernel's classic BPF interpreter would answer for one system call, for the instructions
    /// seccompiler and this module emit (anything else fails the test).
    fn verdict(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        // struct seccomp_data: nr, arch, instruction_pointer, args[6]; native endianness.
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&seccomp_nr(nr).to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let mut accumulator: u32 = 0;
        let mut pc = 0usize;
        loop {
            let instruction = &program[pc];
            let code = u32::from(instruction.code);
            let k = instruction.k;
            let branch = |taken: bool| {
                1 + usize::from(if taken {
                    instruction.jt
                } else {
                    instruction.jf
                })
            };
            pc += match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let at = k as usize;
                    let word = data[at..at + 4].try_into().expect("4 bytes");
                    accumulator = u32::from_ne_bytes(word);
                    1
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => {
                    accumulator &= k;
                    1
                }
                c if c == libc::BPF_JMP | libc::BPF_JA => 1 + k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => branch(accumulator == k),
                c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => branch(accumulator > k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => branch(accumulator >= k),
                c if c == libc::BPF_RET | libc::BPF_K => return k,
                other => panic!("instruction {other:#x} at {pc} is not interpreted here"),
            };
        }
    }

    fn answer(nr: i64, first_arg: u64) -> u32 {
        let program = build_filter().expect("filter");
        verdict(&program, AUDIT_ARCH, nr, [first_arg, 0, 0, 0, 0, 0])
    }

    #[test]
    fn clone3_is_answered_with_enosys_whatever_its_arguments() {
        assert_eq!(answer(libc::SYS_clone3, 0), ENOSYS);
        assert_eq!(answer(libc::SYS_clone3, u64::MAX), ENOSYS);
    }

    #[test]
    fn clone_with_any_namespace_flag_is_refused() {
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
        ] {
            let flags = clone_flags_arg(flag | libc::SIGCHLD);
            assert_eq!(answer(libc::SYS_clone, flags), EPERM, "flag {flag:#x}");
        }
    }

    #[test]
    fn clone_for_threads_and_fork_is_allowed() {
        // What glibc passes for pthread_create and for fork.
        let thread = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID;
        let fork = libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD;
        assert_eq!(answer(libc::SYS_clone, clone_flags_arg(thread)), ALLOW);
        assert_eq!(answer(libc::SYS_clone, clone_flags_arg(fork)), ALLOW);
    }

    #[test]
    fn denied_calls_fail_with_eperm_and_others_are_allowed() {
        for nr in DENIED_COMMON.iter().chain(DENIED_ARCH) {
            assert_eq!(answer(*nr, 0), EPERM, "system call {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_futex,
            libc::SYS_exit_group,
        ] {
            assert_eq!(answer(nr, 0), ALLOW, "system call {nr}");
        }
    }

    #[test]
    fn another_architecture_kills_the_process() {
        let program = build_filter().expect("filter");
        let verdict = verdict(&program, AUDIT_ARCH ^ 1, libc::SYS_read, [0; 6]);
        assert_eq!(verdict, libc::SECCOMP_RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_are_refused() {
        const X32_SYSCALL_BIT: i64 = 0x4000_0000;
        assert_eq!(answer(X32_SYSCALL_BIT | libc::SYS_read, 0), EPERM);
        assert_eq!(answer(X32_SYSCALL_BIT | libc::SYS_clone3, 0), EPERM);
    }
}
