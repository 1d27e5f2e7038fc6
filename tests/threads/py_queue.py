import threading, queue, time
q = queue.Queue()
results = []
lock = threading.Lock()
def worker(n):
    while True:
        item = q.get()
        if item is None:
            q.task_done()
            break
        with lock:
            results.append(item * item)
        q.task_done()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in threads: t.start()
for i in range(200): q.put(i)
for _ in threads: q.put(None)
q.join()
for t in threads: t.join()
ev = threading.Event()
threading.Timer(0.05, ev.set).start()
print(sum(results), len(results), ev.wait(5), threading.active_count())
