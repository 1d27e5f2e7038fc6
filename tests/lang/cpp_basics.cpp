// iostream, std::string, std::map, exceptions (thrown through frames, caught
// by type), RTTI and a static constructor: the C++ runtime's start-up and
// unwinder under hermitux.
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

struct Shape {
	virtual ~Shape() = default;
	virtual double area() const = 0;
};
struct Square : Shape {
	double s;
	explicit Square(double s) : s(s) {}
	double area() const override { return s * s; }
};

static std::map<std::string, int> counts = {{"static", 1}};

static int depth(int n)
{
	if (n == 0)
		throw std::runtime_error("bottom reached");
	return depth(n - 1) + 1;
}

int main(int argc, char **argv)
{
	std::string text = "the quick brown fox jumps over the lazy dog the end";
	std::istringstream in(text);
	for (std::string w; in >> w;)
		counts[w]++;
	for (const auto &[w, n] : counts)
		std::cout << w << '=' << n << ' ';
	std::cout << '\n';
	try {
		depth(50);
	} catch (const std::exception &e) {
		std::cout << "caught: " << e.what() << '\n';
	}
	try {
		std::vector<int> v(3);
		(void)v.at(7);
	} catch (const std::out_of_range &) {
		std::cout << "out_of_range caught\n";
	}
	std::unique_ptr<Shape> s = std::make_unique<Square>(1.5);
	std::cout << "area " << s->area() << " dynamic_cast "
		  << (dynamic_cast<Square *>(s.get()) != nullptr) << '\n';
	std::cout << "args " << argc << (argc > 1 ? std::string(" ") + argv[1] : "") << std::endl;
	std::cerr << "to stderr\n";
	return argc > 2 ? 3 : 0;
}
