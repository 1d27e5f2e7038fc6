// std::thread, std::async with futures, std::mutex and condition_variable,
// std::atomic, and exceptions thrown and caught inside threads (and one
// carried across a future).
#include <atomic>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

int main() {
	std::atomic<long> hits{0};
	std::vector<std::thread> pool;
	for (int i = 0; i < 4; i++)
		pool.emplace_back([&hits, i] {
			for (int k = 0; k < 10000; k++) hits++;
			try {
				if (i % 2) throw std::runtime_error("odd " + std::to_string(i));
			} catch (const std::exception &e) {
				hits += 1000000;
			}
		});
	for (auto &t : pool) t.join();
	std::cout << "hits " << hits << '\n';

	auto sum = std::async(std::launch::async, [] {
		std::vector<long> v(1000);
		std::iota(v.begin(), v.end(), 1);
		return std::accumulate(v.begin(), v.end(), 0L);
	});
	auto fails = std::async(std::launch::async, []() -> int { throw std::logic_error("from a future"); });
	std::cout << "async sum " << sum.get() << '\n';
	try {
		fails.get();
	} catch (const std::logic_error &e) {
		std::cout << "caught " << e.what() << '\n';
	}

	std::mutex m;
	std::condition_variable cv;
	int stage = 0;
	std::thread ping([&] {
		for (int i = 0; i < 100; i++) {
			std::unique_lock<std::mutex> l(m);
			cv.wait(l, [&] { return stage % 2 == 0; });
			stage++;
			cv.notify_all();
		}
	});
	for (int i = 0; i < 100; i++) {
		std::unique_lock<std::mutex> l(m);
		cv.wait(l, [&] { return stage % 2 == 1; });
		stage++;
		cv.notify_all();
	}
	ping.join();
	std::cout << "ping-pong stages " << stage << '\n';
	return 0;
}
