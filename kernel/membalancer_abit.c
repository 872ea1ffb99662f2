// SPDX-License-Identifier: GPL-2.0
/*
 * membalancer helper module: a page-table accessed-bit scanner.
 *
 * BPF cannot walk page tables or clear accessed bits; this module does, for
 * the pids it is told about, and reports every page found accessed through
 * the tracepoint membalancer:abit_access (consumed by membalancer's BPF object
 * with a raw_tp program). See docs/helper-module.md.
 *
 * Interface: /dev/membalancer_abit (root only). Each open file owns a set of
 * pids, configured by writing lines "add PID", "del PID", "clear"; the set is
 * dropped when the file is released. read() returns a text status.
 *
 * Scanning: one kthread, every scan_interval_ms, walks the page tables of the
 * registered processes under mmap_read_trylock (dropped and re-taken every
 * MB_LOCK_BATCH entries, and whenever someone waits for the lock), test-and-
 * clears the accessed bit of present PTEs and huge PMDs under the page-table
 * lock, then flushes the TLBs once per pass so that CPUs set the bits again. At
 * most pages_per_pass entries are visited per pass (shared between the pids);
 * each pid resumes where its previous pass stopped.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/page_idle.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/tlbflush.h>

#define CREATE_TRACE_POINTS
#include "membalancer_abit_trace.h"

static unsigned int scan_interval_ms = 100;
module_param(scan_interval_ms, uint, 0644);
MODULE_PARM_DESC(scan_interval_ms, "Time between scan passes in ms (default 100, min 1)");

static unsigned long pages_per_pass = 65536;
module_param(pages_per_pass, ulong, 0644);
MODULE_PARM_DESC(pages_per_pass, "Page-table entries visited per pass, all pids together (default 65536, min 512)");

static bool flush_tlb = true;
module_param(flush_tlb, bool, 0644);
MODULE_PARM_DESC(flush_tlb, "Flush TLBs after a pass that cleared accessed bits (default Y; N is cheaper, misses re-accesses through cached TLB entries)");

#define MB_MAX_PARAM_PIDS 64
static int pids[MB_MAX_PARAM_PIDS];
static int npids;
module_param_array(pids, int, &npids, 0400);
MODULE_PARM_DESC(pids, "Pids to scan from load to unload, not tied to a file (tests, one-shot use)");

#define MB_MAX_PIDS_PER_FD 4096
#define MB_LOCK_BATCH 4096	/* entries visited between mmap lock drops */
#define MB_MIN_SHARE 512	/* entries per pid per pass, at least */
#define MB_WRITE_MAX 4096	/* bytes per write() */

struct mb_client {
	struct list_head targets;	/* struct mb_target.cnode */
	unsigned int ntargets;
};

struct mb_target {
	struct list_head cnode;		/* in client->targets */
	struct list_head gnode;		/* in mb_targets, scan order */
	struct mb_client *client;
	struct pid *pid;		/* reference held */
	int nr;				/* pid as given by the writer */
	bool dead;
	/* A whole sweep of its address space done. The first sweep only clears
	 * bits: those it finds were set at any time since the page was touched
	 * (allocation included), not while we watched, so they are not reported. */
	bool primed;
	unsigned long resume;		/* next virtual address to scan */
	/* The address space the sweep belongs to: an execve replaces it, and
	 * the new one needs its own first sweep. Compared only, never
	 * dereferenced (a freed mm's address can come back: the exec id too). */
	const struct mm_struct *mm_seen;
	u64 exec_id;			/* the leader's self_exec_id then */
};

/* mb_lock protects the target lists and the statistics; the scanner holds it
 * for a whole pass (bounded by pages_per_pass). */
static DEFINE_MUTEX(mb_lock);
static LIST_HEAD(mb_targets);
static unsigned int mb_ntargets;
static struct mb_client mb_param_client = {
	.targets = LIST_HEAD_INIT(mb_param_client.targets),
};
static struct task_struct *mb_thread;

static struct {
	u64 passes;
	u64 pages_scanned;	/* 4 KiB units */
	u64 pages_accessed;	/* 4 KiB units */
	u64 reports;		/* abit_access events */
	u64 baseline_cleared;	/* 4 KiB units: set bits a first sweep cleared unreported */
	u64 lock_busy;		/* mmap lock not taken: pid skipped for a pass */
	u64 exited;		/* targets dropped because the process was gone */
	u64 execs;		/* targets whose process called execve: swept anew */
	u64 last_pass_ns;
} mb_stats;

struct mb_walk {
	struct mm_struct *mm;
	int tgid;
	unsigned long visited;		/* entries visited (budget) */
	unsigned long since_drop;
	unsigned long scanned, accessed, reports, baseline;
	bool report;			/* the target is primed: report what is set */
	bool flush;			/* accessed bits were cleared */
};

/* Node of the page at pfn (-1 if it has no struct page). The page is mapped
 * and we hold its page-table lock, so it cannot go away meanwhile. With idle
 * page tracking built in, also mark it young the way page_idle does, so that
 * reclaim still counts the access whose accessed bit we just cleared. */
static int mb_accessed_pfn(unsigned long pfn)
{
	struct page *page;

	if (!pfn_valid(pfn))
		return -1;
	page = pfn_to_page(pfn);
#ifdef CONFIG_PAGE_IDLE_FLAG
	set_page_young(page);
#endif
	return page_to_nid(page);
}

/* An accessed bit was cleared at addr (pages 4 KiB units, node from
 * mb_accessed_pfn, which also marks the page young: every cleared bit, first
 * sweep included). Reported once the target is primed. */
static void mb_cleared(struct mb_walk *w, unsigned long addr, unsigned int shift, int node,
		       unsigned long pages)
{
	w->flush = true;
	if (!w->report) {
		w->baseline += pages;
		return;
	}
	trace_abit_access(w->tgid, addr, shift, node);
	w->accessed += pages;
	w->reports++;
}

/* Entries of one PMD range [addr, end), mmap lock held for read. */
static void mb_walk_pmd(struct mb_walk *w, pmd_t *pmdp, unsigned long addr,
			unsigned long end)
{
	pmd_t pmd = READ_ONCE(*pmdp);
	spinlock_t *ptl;
	pte_t *start_pte, *pte;

	if (pmd_none(pmd) || !pmd_present(pmd))
		return;
	if (pmd_trans_huge(pmd) || pmd_devmap(pmd)) {
		ptl = pmd_lock(w->mm, pmdp);
		pmd = *pmdp;
		if (pmd_present(pmd) && (pmd_trans_huge(pmd) || pmd_devmap(pmd))) {
			w->visited++;
			w->since_drop++;
			w->scanned += PTRS_PER_PMD;
			/* pmdp_test_and_clear_young() is not exported; on x86
			 * it is exactly this atomic bit operation. */
			if (test_and_clear_bit(_PAGE_BIT_ACCESSED, (unsigned long *)&pmdp->pmd))
				mb_cleared(w, addr & PMD_MASK, PMD_SHIFT, mb_accessed_pfn(pmd_pfn(pmd)),
					   PTRS_PER_PMD);
			spin_unlock(ptl);
			return;
		}
		spin_unlock(ptl);
		/* Split meanwhile: it is a page table now (or gone). */
		pmd = READ_ONCE(*pmdp);
		if (pmd_none(pmd) || !pmd_present(pmd) || pmd_trans_huge(pmd) || pmd_devmap(pmd))
			return;
	}
	if (pmd_bad(pmd))
		return;
	/* A page table cannot be freed or collapsed into a huge PMD while we
	 * hold the mmap lock for read (both need it for write in 6.1). */
	start_pte = pte = pte_offset_map_lock(w->mm, pmdp, addr, &ptl);
	for (; addr < end; addr += PAGE_SIZE, pte++) {
		pte_t e = *pte;

		w->visited++;
		w->since_drop++;
		if (!pte_present(e))
			continue;
		w->scanned++;
		if (!pte_young(e))
			continue;
		if (test_and_clear_bit(_PAGE_BIT_ACCESSED, (unsigned long *)&pte->pte))
			mb_cleared(w, addr, PAGE_SHIFT, pte_special(e) ? -1 : mb_accessed_pfn(pte_pfn(e)), 1);
	}
	pte_unmap_unlock(start_pte, ptl);
}

/* Walks down to the PMD covering addr; returns the next address to visit. */
static unsigned long mb_walk_step(struct mb_walk *w, unsigned long addr, unsigned long end)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud, pudv;
	unsigned long next;

	pgd = pgd_offset(w->mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return pgd_addr_end(addr, end);
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return p4d_addr_end(addr, end);
	pud = pud_offset(p4d, addr);
	pudv = READ_ONCE(*pud);
	if (pud_none(pudv) || !pud_present(pudv) || pud_leaf(pudv) || pud_bad(pudv))
		return pud_addr_end(addr, end);
	next = pmd_addr_end(addr, end);
	mb_walk_pmd(w, pmd_offset(pud, addr), addr, next);
	return next;
}

/* Time to drop the mmap lock: a batch done, or someone waits for it or for
 * the CPU. */
static bool mb_should_yield(struct mb_walk *w)
{
	return w->since_drop >= MB_LOCK_BATCH || need_resched() || mmap_lock_is_contended(w->mm);
}

static bool mb_vma_scannable(struct vm_area_struct *vma)
{
	/* VM_SPECIAL: VM_IO, VM_PFNMAP, VM_MIXEDMAP, VM_DONTEXPAND (vdso, vvar). */
	return !(vma->vm_flags & (VM_SPECIAL | VM_HUGETLB));
}

static void mb_flush_ipi(void *unused)
{
	__flush_tlb_all();
}

/*
 * After clearing accessed bits the TLBs must forget the entries, or CPUs keep
 * using them without setting the bits again. flush_tlb_mm_range() is not
 * exported to modules and the per-mm TLB generation (inc_mm_tlb_gen) is hidden
 * from them, so a per-mm flush cannot reach CPUs that still cache the mm's
 * PCID without running it. __flush_tlb_all() (exported) on every online CPU
 * drops all of it, all PCIDs included: one IPI round per pass, not per page.
 */
static void mb_flush_tlb_all_cpus(void)
{
	on_each_cpu(mb_flush_ipi, NULL, 1);
}

/*
 * The mm of the process behind t->pid, with a reference (mmput_async), or
 * NULL. Usually the thread-group leader's; a leader that left with
 * pthread_exit() while other threads run is a zombie without an mm, so then
 * any live thread of the group that still has one. Sets *tgid and *exec_id
 * (the leader's self_exec_id: it changes with every execve); marks the
 * target dead once the pid has no task.
 */
static struct mm_struct *mb_target_mm(struct mb_target *t, int *tgid, u64 *exec_id)
{
	struct task_struct *task, *th;
	struct mm_struct *mm;

	task = get_pid_task(t->pid, PIDTYPE_PID);
	if (!task) {
		t->dead = true;
		return NULL;
	}
	*tgid = task_tgid_nr(task);
	*exec_id = READ_ONCE(task->self_exec_id);
	mm = get_task_mm(task);	/* NULL once exiting */
	if (!mm) {
		/* Bounded by the group's threads; get_task_mm only takes the
		 * task's spinlock: fine under RCU. */
		rcu_read_lock();
		for_each_thread(task, th) {
			if (th == task || (th->flags & PF_EXITING))
				continue;
			mm = get_task_mm(th);
			if (mm)
				break;
		}
		rcu_read_unlock();
	}
	put_task_struct(task);
	return mm;
}

/* Scans up to share entries of one target; returns the entries visited. */
static unsigned long mb_scan_target(struct mb_target *t, unsigned long share, bool *flush)
{
	struct mm_struct *mm;
	struct vm_area_struct *vma;
	struct mb_walk w = { 0 };
	unsigned long addr;
	bool locked, done = false;
	u64 start = ktime_get_ns(), exec_id = 0;

	mm = mb_target_mm(t, &w.tgid, &exec_id);
	if (!mm)
		return 0;
	if (mm != t->mm_seen || exec_id != t->exec_id) {
		/* A new address space (the first scan, or an execve since the
		 * last): its bits date from before we watched it, so it gets a
		 * first sweep of its own, from its start. */
		if (t->mm_seen)
			mb_stats.execs++;
		t->mm_seen = mm;
		t->exec_id = exec_id;
		t->primed = false;
		t->resume = 0;
	}
	addr = t->resume;
	w.mm = mm;
	w.report = t->primed;

	locked = mmap_read_trylock(mm);
	if (!locked)
		mb_stats.lock_busy++;
	while (locked && !done) {
		vma = find_vma(mm, addr);
		if (!vma) {
			addr = 0;	/* end of the address space: next pass starts over */
			t->primed = true;
			break;
		}
		if (addr < vma->vm_start)
			addr = vma->vm_start;
		if (!mb_vma_scannable(vma)) {
			/* Skipped, but not free: a step of the budget, and the
			 * same yield points, so that many such mappings cannot
			 * make a pass unbounded. */
			addr = vma->vm_end;
			w.visited++;
			w.since_drop++;
		}
		while (addr < vma->vm_end) {
			unsigned long before = w.visited;

			addr = mb_walk_step(&w, addr, vma->vm_end);
			if (w.visited == before) {
				/* An empty upper-level entry: still costs a step, so
				 * sparse reservations stay within the budget too. */
				w.visited++;
				w.since_drop++;
			}
			if (w.visited >= share || mb_should_yield(&w))
				break;
		}
		if (w.visited >= share) {
			done = true;
		} else if (mb_should_yield(&w)) {
			/* Let writers and others in; the VMA may be gone after. */
			mmap_read_unlock(mm);
			cond_resched();
			w.since_drop = 0;
			if (kthread_should_stop() || !mmap_read_trylock(mm)) {
				locked = false;
				done = true;
			}
		}
	}
	if (locked)
		mmap_read_unlock(mm);
	if (w.flush)
		*flush = true;
	t->resume = addr;
	mmput_async(mm);	/* the last reference of an exited process frees it elsewhere */

	mb_stats.pages_scanned += w.scanned;
	mb_stats.pages_accessed += w.accessed;
	mb_stats.reports += w.reports;
	mb_stats.baseline_cleared += w.baseline;
	trace_abit_pass(w.tgid, w.scanned, w.accessed, ktime_get_ns() - start);
	return w.visited;
}

static void mb_target_free(struct mb_target *t)
{
	list_del(&t->cnode);
	list_del(&t->gnode);
	t->client->ntargets--;
	mb_ntargets--;
	put_pid(t->pid);
	kfree(t);
}

static void mb_client_clear(struct mb_client *c)
{
	struct mb_target *t, *tmp;

	list_for_each_entry_safe(t, tmp, &c->targets, cnode)
		mb_target_free(t);
}

static void mb_pass(void)
{
	unsigned long budget, share, used = 0;
	unsigned int i, n;
	u64 start = ktime_get_ns();
	struct mb_target *t;
	bool flush = false;

	mutex_lock(&mb_lock);
	n = mb_ntargets;
	if (!n) {
		mutex_unlock(&mb_lock);
		return;
	}
	budget = max(READ_ONCE(pages_per_pass), (unsigned long)MB_MIN_SHARE);
	share = max(budget / n, (unsigned long)MB_MIN_SHARE);
	/* Round robin: each target scanned goes to the tail. */
	for (i = 0; i < n && used < budget && !kthread_should_stop(); i++) {
		if (list_empty(&mb_targets))	/* all exited during this pass */
			break;
		t = list_first_entry(&mb_targets, struct mb_target, gnode);
		list_move_tail(&t->gnode, &mb_targets);
		used += mb_scan_target(t, min(share, budget - used), &flush);
		if (t->dead) {
			mb_stats.exited++;
			mb_target_free(t);
		}
		cond_resched();
	}
	if (flush && READ_ONCE(flush_tlb))
		mb_flush_tlb_all_cpus();
	mb_stats.passes++;
	mb_stats.last_pass_ns = ktime_get_ns() - start;
	mutex_unlock(&mb_lock);
}

static int mb_thread_fn(void *unused)
{
	while (!kthread_should_stop()) {
		mb_pass();
		schedule_timeout_interruptible(msecs_to_jiffies(max(READ_ONCE(scan_interval_ms), 1U)));
	}
	return 0;
}

/* mb_lock held. */
static int mb_client_add(struct mb_client *c, int nr)
{
	struct mb_target *t;
	struct task_struct *task;
	struct pid *pid;

	if (nr <= 0)
		return -EINVAL;
	pid = find_get_pid(nr);	/* in the writer's pid namespace */
	if (!pid)
		return -ESRCH;
	/* The same process: a no-op. The same number with another struct pid
	 * is a new process that reused it (the old target dies at its next
	 * scan): added. */
	list_for_each_entry(t, &c->targets, cnode) {
		if (t->pid == pid && !t->dead) {
			put_pid(pid);
			return 0;
		}
	}
	if (c->ntargets >= MB_MAX_PIDS_PER_FD) {
		put_pid(pid);
		return -ENOSPC;
	}
	task = get_pid_task(pid, PIDTYPE_PID);
	if (!task) {
		put_pid(pid);
		return -ESRCH;
	}
	if (task->flags & PF_KTHREAD) {
		put_task_struct(task);
		put_pid(pid);
		return -EINVAL;
	}
	put_task_struct(task);
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t) {
		put_pid(pid);
		return -ENOMEM;
	}
	t->pid = pid;
	t->nr = nr;
	t->client = c;
	list_add_tail(&t->cnode, &c->targets);
	list_add_tail(&t->gnode, &mb_targets);
	c->ntargets++;
	mb_ntargets++;
	return 0;
}

static int mb_client_del(struct mb_client *c, int nr)
{
	struct mb_target *t, *tmp;
	int err = -ESRCH;

	/* Every target of that number (an old process and one that reused it). */
	list_for_each_entry_safe(t, tmp, &c->targets, cnode) {
		if (t->nr == nr) {
			mb_target_free(t);
			err = 0;
		}
	}
	return err;
}

static int mb_open(struct inode *inode, struct file *file)
{
	struct mb_client *c;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	INIT_LIST_HEAD(&c->targets);
	file->private_data = c;
	return 0;
}

static int mb_release(struct inode *inode, struct file *file)
{
	struct mb_client *c = file->private_data;

	mutex_lock(&mb_lock);
	mb_client_clear(c);
	mutex_unlock(&mb_lock);
	kfree(c);
	return 0;
}

static int mb_parse_pid(const char *s, int *nr)
{
	s = skip_spaces(s);
	if (kstrtoint(s, 10, nr) || *nr <= 0)
		return -EINVAL;
	return 0;
}

static ssize_t mb_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	struct mb_client *c = file->private_data;
	char *buf, *cur, *line;
	int nr, err = 0;

	if (!count)
		return 0;
	if (count > MB_WRITE_MAX)
		return -EINVAL;
	buf = memdup_user_nul(ubuf, count);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* -ERESTARTSYS, as mutex_lock_interruptible returns: a signal whose
	 * handler has SA_RESTART restarts the call, others see EINTR. */
	if (mutex_lock_interruptible(&mb_lock)) {
		kfree(buf);
		return -ERESTARTSYS;
	}
	cur = buf;
	while (!err && (line = strsep(&cur, "\n")) != NULL) {
		line = strim(line);
		if (!*line)
			continue;
		if (!strcmp(line, "clear")) {
			mb_client_clear(c);
		} else if (!strncmp(line, "add ", 4)) {
			err = mb_parse_pid(line + 4, &nr);
			if (!err)
				err = mb_client_add(c, nr);
		} else if (!strncmp(line, "del ", 4)) {
			err = mb_parse_pid(line + 4, &nr);
			if (!err)
				err = mb_client_del(c, nr);
		} else {
			err = -EINVAL;
		}
	}
	mutex_unlock(&mb_lock);
	kfree(buf);
	return err ? err : count;
}

static ssize_t mb_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct mb_client *c = file->private_data;
	struct mb_target *t;
	const size_t size = 2048;
	unsigned int shown = 0;
	ssize_t ret;
	char *buf;
	int len;

	buf = kmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	/* -ERESTARTSYS, as mutex_lock_interruptible returns: a signal whose
	 * handler has SA_RESTART restarts the call, others see EINTR. */
	if (mutex_lock_interruptible(&mb_lock)) {
		kfree(buf);
		return -ERESTARTSYS;
	}
	len = scnprintf(buf, size,
			"pids: %u\nfile_pids: %u\npasses: %llu\npages_scanned: %llu\n"
			"pages_accessed: %llu\nreports: %llu\nbaseline_cleared: %llu\nlock_busy: %llu\n"
			"exited: %llu\nexecs: %llu\nlast_pass_ns: %llu\nscan_interval_ms: %u\npages_per_pass: %lu\n"
			"file_pid_list:",
			mb_ntargets, c->ntargets, mb_stats.passes, mb_stats.pages_scanned,
			mb_stats.pages_accessed, mb_stats.reports, mb_stats.baseline_cleared, mb_stats.lock_busy,
			mb_stats.exited, mb_stats.execs, mb_stats.last_pass_ns, READ_ONCE(scan_interval_ms),
			READ_ONCE(pages_per_pass));
	list_for_each_entry(t, &c->targets, cnode) {
		if (shown++ == 64) {
			len += scnprintf(buf + len, size - len, " ...");
			break;
		}
		len += scnprintf(buf + len, size - len, " %d", t->nr);
	}
	len += scnprintf(buf + len, size - len, "\n");
	mutex_unlock(&mb_lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, len);
	kfree(buf);
	return ret;
}

static const struct file_operations mb_fops = {
	.owner = THIS_MODULE,
	.open = mb_open,
	.release = mb_release,
	.read = mb_read,
	.write = mb_write,
	.llseek = no_llseek,
};

static struct miscdevice mb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "membalancer_abit",
	.fops = &mb_fops,
	.mode = 0600,
};

static int __init mb_init(void)
{
	int i, err;

	mutex_lock(&mb_lock);
	for (i = 0, err = 0; i < npids && !err; i++) {
		err = mb_client_add(&mb_param_client, pids[i]);
		if (err)
			pr_err("pids=%d: %d\n", pids[i], err);
	}
	mutex_unlock(&mb_lock);
	if (err)
		goto out_free;
	mb_thread = kthread_run(mb_thread_fn, NULL, "membalancer_abit");
	if (IS_ERR(mb_thread)) {
		err = PTR_ERR(mb_thread);
		goto out_free;
	}
	err = misc_register(&mb_misc);
	if (err)
		goto out_thread;
	pr_info("loaded: scan_interval_ms=%u pages_per_pass=%lu pids=%d\n",
		scan_interval_ms, pages_per_pass, npids);
	return 0;

out_thread:
	kthread_stop(mb_thread);
out_free:
	mutex_lock(&mb_lock);
	mb_client_clear(&mb_param_client);
	mutex_unlock(&mb_lock);
	return err;
}

static void __exit mb_exit(void)
{
	/* Open files hold a module reference, so no client is left but the
	 * load-time one; the scanner may be mid-pass: kthread_stop waits. */
	misc_deregister(&mb_misc);
	kthread_stop(mb_thread);
	mutex_lock(&mb_lock);
	mb_client_clear(&mb_param_client);
	mutex_unlock(&mb_lock);
	pr_info("unloaded: %llu passes, %llu pages scanned, %llu reports\n",
		mb_stats.passes, mb_stats.pages_scanned, mb_stats.reports);
}

module_init(mb_init);
module_exit(mb_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("membalancer");
MODULE_DESCRIPTION("Page-table accessed-bit scanner for membalancer, reporting through tracepoints");
