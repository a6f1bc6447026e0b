//! The seccomp filter applied to every sandboxed process.
//!
//! A deny list, not an allow list: language runtimes use a wide and changing set of system calls, so the
//! filter allows everything except calls that reconfigure the machine, the kernel, namespaces, mounts or
//! other processes. Those fail with EPERM, which programs handle more gracefully than being killed.

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
    // hand the process a fresh set of capabilities over it). clone3(2) passes its flags in memory a
    // filter cannot read; it stays allowed because refusing it with EPERM breaks thread creation in
    // glibc, and everything a new namespace could be used for (mount, unshare, setns) is refused anyway.
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
        let flag = flag as u64;
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
    Ok(with_foreign_abi_denied(program))
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

/// x32 system calls share the x86_64 audit arch but carry bit 30 in their number, so a deny list keyed on
/// x86_64 numbers would not see them. Right after seccompiler's architecture check, refuse them all.
#[cfg(target_arch = "x86_64")]
fn with_foreign_abi_denied(mut program: BpfProgram) -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const ARCH_CHECK_LEN: usize = 3;
    let deny_x32 = [
        sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0, // offsetof(struct seccomp_data, nr)
        },
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
    ];
    let insert_at = ARCH_CHECK_LEN.min(program.len());
    program.splice(insert_at..insert_at, deny_x32);
    program
}

#[cfg(not(target_arch = "x86_64"))]
fn with_foreign_abi_denied(program: BpfProgram) -> BpfProgram {
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_for_this_architecture() {
        let program = build_filter().expect("filter");
        assert!(program.len() > DENIED_COMMON.len());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_check_follows_the_architecture_check() {
        let program = build_filter().expect("filter");
        assert_eq!(program[4].k, 0x4000_0000);
        assert_eq!(program[5].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }
}
